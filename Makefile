# licsrv — `make run` serves a local server, `make test` runs the suite. Both install what is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-all lint format install system-deps browser-deps bench-deps nginx-deps js-deps c-client-deps c-client bench profile clean

run: install system-deps
	$(BIN)/licsrv dev

test: install system-deps browser-deps bench-deps nginx-deps js-deps c-client-deps lint
	$(BIN)/python -m pytest

test-all: install system-deps browser-deps bench-deps nginx-deps js-deps c-client-deps
	$(BIN)/python -m pytest -m ""

bench: install system-deps bench-deps
	$(BIN)/python -m bench

profile: install system-deps bench-deps
	$(BIN)/python -m bench --profile

LINTED := src tests bench clients/python

lint: install c-client
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)

# liblicsrv (clients/c), compiled with -Wall -Wextra -Werror; tests/test_c_client.py builds it too.
c-client: c-client-deps
	@$(MAKE) -s -C clients/c

format: install
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || $(MAKE) apt-python-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m pip install --quiet -e clients/python
	touch $(STAMP)

apt-python-venv:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv python3-pip

# PostgreSQL and Redis servers come from Debian's packages; tests and `licsrv dev` start their own
# throwaway instances from these binaries, so nothing here touches a system service.
system-deps:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql || \
		{ echo "PostgreSQL is missing and could not be installed: install the 'postgresql' package as root."; exit 1; }; \
	fi
	@if ! command -v redis-server >/dev/null 2>&1; then \
		echo "Installing Redis (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server || \
		{ echo "redis-server is missing and could not be installed: install the 'redis-server' package as root."; exit 1; }; \
	fi

# The C client (clients/c) builds against Debian's libsodium and libcurl.
c-client-deps:
	@if ! dpkg -s libsodium-dev libcurl4-openssl-dev >/dev/null 2>&1; then \
		echo "Installing libsodium-dev and libcurl4-openssl-dev for the C client (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsodium-dev libcurl4-openssl-dev || \
		{ echo "libsodium-dev or libcurl4-openssl-dev is missing and could not be installed: install them as root."; exit 1; }; \
	fi

# The browser tests drive Debian's chromium through Playwright; without it they skip and say why.
browser-deps:
	@if ! [ -x /usr/bin/chromium ]; then \
		echo "Installing chromium for the browser tests (apt-get)"; \
		($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
		echo "WARNING: chromium could not be installed; the browser tests will be skipped."; \
	fi
	@# German and Chinese customer data in the screenshots need a CJK font, or they show as boxes.
	@if ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then \
		echo "Installing fonts-noto-cjk for the browser tests' screenshots (apt-get)"; \
		($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk) || \
		echo "WARNING: fonts-noto-cjk could not be installed; Chinese text in screenshots shows as boxes."; \
	fi

# The load generator of `make bench` (and of its quick smoke test in `make test`) is Debian's wrk.
bench-deps:
	@if ! command -v wrk >/dev/null 2>&1; then \
		echo "Installing wrk (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk || \
		{ echo "wrk is missing and could not be installed: install the 'wrk' package as root."; exit 1; }; \
	fi

# The multi-instance test puts Debian's nginx, with deploy/nginx/licsrv.conf, in front of two licsrv instances;
# it runs its own nginx on free loopback ports (Debian's package may also start its service on port 80).
nginx-deps:
	@if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then \
		echo "Installing nginx (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx || \
		{ echo "nginx is missing and could not be installed: install the 'nginx' package as root."; exit 1; }; \
	fi

# The JavaScript client's packages (clients/js, from its package-lock.json); its tests run inside pytest
# (tests/test_js_client.py). Without Node.js they are skipped, and so is this.
JS_STAMP := clients/js/node_modules/.installed

js-deps:
	@if command -v npm >/dev/null 2>&1; then \
		if ! [ -f $(JS_STAMP) ] || [ clients/js/package-lock.json -nt $(JS_STAMP) ]; then \
			(cd clients/js && npm ci --silent --no-audit --no-fund) && touch $(JS_STAMP) || \
			{ echo "npm ci failed in clients/js"; exit 1; }; \
		fi; \
	else \
		echo "WARNING: npm is missing; the JavaScript client's tests will be skipped."; \
	fi

clean:
	$(MAKE) -C clients/c clean
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
