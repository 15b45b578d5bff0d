"""Schemathesis over the whole /api/openapi.json (client, legacy and management API), bounded: no 5xx, and
every answer matches the document (status, content type, body schema).

The server runs as `licsrv serve` in a process of its own, on a database and Redis db of its own, so the
fuzzer may rotate keys and change settings without touching the other tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
from pathlib import Path

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from licsrv.db import Queries, connect
from licsrv.devstack.postgres import free_port
from licsrv.migrate import migrate
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token

from test_cli import LICSRV, cli_env, wait_for

MAX_EXAMPLES = int(os.environ.get("LICSRV_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


async def _fuzz_database(base_url: str, sql_dir: Path, secret_key: str) -> tuple[str, str, str]:
    name = f"licsrv_fuzz_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{base_url.rpartition('/')[0]}/{name}"
    await migrate(url, sql_dir, secret_key)
    conn = await connect(url)
    try:
        queries = Queries.load(sql_dir / "queries")
        _, token = await create_token(conn, queries, "fuzz", "owner", CLI_ACTOR)
        api_key = await conn.fetchval("SELECT api_key FROM products WHERE id = 1")
    finally:
        await conn.close()
    return url, token, api_key


@pytest.fixture(scope="module")
def fuzz_server(settings, tmp_path_factory):
    database_url, token, api_key = asyncio.run(
        _fuzz_database(settings.database_url, settings.sql_dir, settings.secret_key)
    )
    port = free_port()
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    env = cli_env(
        settings,
        LICSRV_PORT=str(port),
        LICSRV_DATABASE_URL=database_url,
        LICSRV_REDIS_URL=settings.redis_url.rpartition("/")[0] + "/9",
        LICSRV_ACCESS_LOG="0",
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [*LICSRV, "serve", "--workers", "1", "--no-migrate"], env=env, stdout=output, stderr=output
        )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(f"{base}/health")[0] == 200
        yield {"base": base, "token": token, "api_key": api_key, "log": log}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_api_answers_match_the_document_and_never_5xx(fuzz_server):
    # Each operation driven with hypothesis directly (schemathesis' pytest fixture loader needs pytest < 9).
    schema = schemathesis.openapi.from_url(f"{fuzz_server['base']}/api/openapi.json")
    headers = {"X-API-Key": fuzz_server["api_key"], "Authorization": f"Bearer {fuzz_server['token']}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        strategy = operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case) -> None:
            case.call_and_validate(base_url=fuzz_server["base"], headers=headers, checks=CHECKS, timeout=10)

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is an exception group
            failures[operation.label] = str(exc)[:3000]
    assert operations >= 30
    assert failures == {}, "\n\n".join(f"{label}: {error}" for label, error in failures.items())
