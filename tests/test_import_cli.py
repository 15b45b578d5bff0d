"""`licsrv import licenses FILE.csv`: the same import as the management API's, from the command line."""

from __future__ import annotations

import csv
import io
import secrets
import subprocess

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from licsrv.errors import ApiError
from licsrv.services.import_rows import Catalogue
from licsrv.services.license_import import ImportReport, _read_rows

from test_cli import LICSRV, cli_env


def run_import(settings, path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LICSRV, "import", "licenses", str(path), *options],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_cli_imports_a_file_reports_refusals_and_a_rerun_changes_nothing(settings, conn, tmp_path):
    keys = [f"CLI-{secrets.token_hex(4)}-key" for _ in range(2)]
    path = tmp_path / "licenses.csv"
    path.write_text(
        "key,customer,max_devices,hardware_ids\n"
        f"{keys[0]},Jürgen Groß,2,hw-1;hw-2\n"
        f"{keys[1]},王小明,1,\n"
        "tiny,,,\n",
        encoding="utf-8",
    )
    dry = run_import(settings, path, "--dry-run")
    assert dry.returncode == 1  # a line was refused
    assert "dry run, nothing written: created 2, updated 0, unchanged 0, refused 1" in dry.stdout
    assert "line 4 (tiny): VALIDATION_ERROR" in dry.stderr
    assert await conn.fetchval("SELECT count(*) FROM licenses WHERE key = ANY($1)", keys) == 0

    done = run_import(settings, path)
    assert "created 2, updated 0, unchanged 0, refused 1" in done.stdout, done.stderr
    license_id = await conn.fetchval("SELECT id FROM licenses WHERE key = $1", keys[0])
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", license_id) == 2

    path.write_text(path.read_text(encoding="utf-8").replace("tiny,,,\n", ""), encoding="utf-8")
    again = run_import(settings, path)
    assert again.returncode == 0, again.stderr
    assert "created 0, updated 0, unchanged 2, refused 0" in again.stdout


def test_a_writing_import_needs_redis_and_says_so_in_one_line(settings, tmp_path):
    """A file may suspend licenses: without Redis their live sessions would keep running, so it writes
    nothing; a dry run needs no Redis."""
    path = tmp_path / "licenses.csv"
    path.write_text(f"key,status\nNOREDIS-{secrets.token_hex(4)},suspended\n", encoding="utf-8")
    env = {**cli_env(settings, LICSRV_REDIS_URL=""), "LICSRV_DEV_DIR": str(tmp_path / "no-dev-stack")}
    refused = subprocess.run(
        [*LICSRV, "import", "licenses", str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "LICSRV_REDIS_URL is not set" in refused.stderr
    assert "Traceback" not in refused.stderr
    dry = subprocess.run(
        [*LICSRV, "import", "licenses", str(path), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr


def test_the_cli_names_an_unknown_product_in_one_line(settings, tmp_path):
    path = tmp_path / "licenses.csv"
    path.write_text("key\nABCDEFGH-1\n", encoding="utf-8")
    result = run_import(settings, path, "--product", "no-such-product")
    assert result.returncode != 0
    assert "No product with slug 'no-such-product'" in result.stderr
    assert "Traceback" not in result.stderr


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
COLUMNS = ["key", "customer", "email", "max_devices", "max_sessions", "expires_at", "status", "features"]


CODES = {"VALIDATION_ERROR", "UNKNOWN_REFERENCE", "CONFLICT", "LICENSE_KEY_TAKEN", "DEVICE_LIMIT_REACHED"}
KEY = st.one_of(st.from_regex(r"[!-~]{8,20}", fullmatch=True), CELL)
ROW = st.tuples(KEY, *[st.one_of(CELL, st.sampled_from(["", "1", "2030-01-01", "a=1;b=true"]))] * 7).map(list)
ROWS = st.lists(ROW, min_size=1, max_size=5)


def as_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(rows=ROWS)
def test_any_cell_contents_are_read_or_refused_with_a_code(rows):
    catalogue = Catalogue.of([{"id": 1, "slug": "default", "archived_at": None}], [])
    report = ImportReport(dry_run=True)
    try:
        read = [row for row in _read_rows(as_csv(rows), catalogue, 1, report) if row is not None]
    except ApiError as exc:  # the file as a whole (e.g. a line that is not CSV)
        assert exc.code == "VALIDATION_ERROR"
        return
    assert len(read) + len(report.refusals) <= len(rows)
    assert all(r.code in CODES and r.line >= 2 for r in report.refusals)


async def test_any_cell_contents_over_http_are_answered_never_a_500(client, admin_headers):
    texts: list[str] = []

    @hypothesis_settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(rows=ROWS)
    def collect(rows):
        texts.append(as_csv(rows))

    collect()
    for text in texts:
        response = await client.post(
            "/api/v1/admin/licenses/import?dry_run=true",
            data=text.encode(),
            headers={**admin_headers, "Content-Type": "text/csv"},
        )
        assert response.status in (200, 400), await response.text()
        body = await response.json()
        if response.status == 400:
            assert body["error"]["code"] == "VALIDATION_ERROR"
            continue
        assert {r["code"] for r in body["data"]["refusals"]} <= CODES
