"""The command line beside `make run`: it finds the dev stack in `.licsrv/`, and without one (or with its
database down) it says what is wrong in one line with exit code 2, never a traceback."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from licsrv.cli_env import ENV_FILE, write_dev_env
from licsrv.devserver import local_services
from licsrv.devstack.postgres import free_port

LICSRV = str(Path(sys.executable).parent / "licsrv")  # the installed command, as a developer runs it


def clean_env(**extra: str) -> dict[str, str]:
    """No LICSRV_* at all, as in a fresh terminal."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LICSRV_LOG_LEVEL": "WARNING", **extra}


def licsrv(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LICSRV, *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fake_dev_stack(directory: Path, settings, **override: str) -> None:
    write_dev_env(directory / ".licsrv", replace(settings, **override))


def test_tokens_and_licenses_are_made_in_the_dev_stack_found_in_dot_licsrv(tmp_path, settings):
    fake_dev_stack(tmp_path, settings)

    made = licsrv(tmp_path, "tokens", "create", "--name", "from-dev-dir")
    key = licsrv(tmp_path, "licenses", "create", "--customer-name", "Dev")

    assert made.returncode == 0, made.stderr
    assert re.fullmatch(r"lst_[A-Za-z0-9_-]{40,}", made.stdout.strip())
    assert made.stderr.count("using the dev stack in .licsrv") == 1
    assert "postgresql://postgres@127.0.0.1" in made.stderr or "***" in made.stderr
    assert key.returncode == 0 and re.fullmatch(r"([2-9A-Z]{5}-){4}[2-9A-Z]{5}", key.stdout.strip())


def test_without_settings_or_dev_stack_one_line_and_exit_code_2(tmp_path):
    for args in (("tokens", "create", "--name", "x"), ("licenses", "create"), ("retention",), ("migrate",)):
        result = licsrv(tmp_path, *args)
        assert result.returncode == 2, result
        assert result.stderr == (
            "licsrv: LICSRV_DATABASE_URL is not set (and no dev stack in ./.licsrv); "
            "see README › Configuration\n"
        )
        assert result.stdout == ""


def test_a_dev_stack_that_is_not_running_is_one_line_too(tmp_path, settings):
    stopped = f"postgresql://postgres@127.0.0.1:{free_port()}/licsrv"
    fake_dev_stack(tmp_path, settings, database_url=stopped)

    result = licsrv(tmp_path, "tokens", "create", "--name", "x")

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("licsrv: using the dev stack")
    assert len(lines) == 2 and lines[1].startswith(f"licsrv: cannot reach the database at {stopped}")
    assert "make run" in lines[1] and "Traceback" not in result.stderr


def test_the_environment_wins_over_the_dev_stack(tmp_path, settings):
    fake_dev_stack(tmp_path, settings)
    elsewhere = f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/licsrv"

    result = licsrv(
        tmp_path,
        "tokens",
        "create",
        "--name",
        "x",
        LICSRV_DATABASE_URL=elsewhere,
        LICSRV_REDIS_URL=settings.redis_url,
        LICSRV_SECRET_KEY="s",
    )

    assert result.returncode == 2
    assert "using the dev stack" not in result.stderr
    assert result.stderr.startswith("licsrv: cannot reach the database at postgresql://someone:***@127.0.0.1")
    assert "hunter2" not in result.stderr


def test_a_setting_the_dev_stack_lacks_is_named(tmp_path, settings):
    (tmp_path / ".licsrv").mkdir()
    (tmp_path / ".licsrv" / ENV_FILE).write_text(json.dumps({"LICSRV_DATABASE_URL": settings.database_url}))

    result = licsrv(tmp_path, "keys", "rotate")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "licsrv: LICSRV_SECRET_KEY is not set (nor in the dev stack in ./.licsrv); see README › Configuration"
    )


def test_licsrv_dev_describes_its_stack_to_its_owner_only(tmp_path, settings):
    dev_dir = tmp_path / "dev"
    old = dev_dir / ENV_FILE
    dev_dir.mkdir()
    old.write_text("{}")
    old.chmod(0o644)

    with local_services(replace(settings, dev_dir=dev_dir)) as ready:
        written = json.loads(old.read_text())

    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert written == {
        "LICSRV_DATABASE_URL": ready.database_url,
        "LICSRV_REDIS_URL": ready.redis_url,
        "LICSRV_SECRET_KEY": ready.secret_key,
    }
