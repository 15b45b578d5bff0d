"""`licsrv products …` and `licsrv plans …` as a vendor types them."""

from __future__ import annotations

import json
import secrets
import subprocess

from test_cli import LICSRV, cli_env, licsrv


def refused(settings, *args: str) -> str:
    result = subprocess.run(
        [*LICSRV, *args], env=cli_env(settings), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


def test_products_create_list_and_archive(settings):
    slug = f"cli-{secrets.token_hex(4)}"
    legacy_key = f"LEGACY-{secrets.token_hex(6)}"
    created = licsrv(
        settings, "products", "create", "--name", "Büro Suite 办公", "--slug", slug, "--api-key", legacy_key
    )
    assert created.endswith(f"{slug}: API key {legacy_key}")
    listed = licsrv(settings, "products", "list").splitlines()
    assert any(line.split("\t")[1:] == [slug, "open", "Büro Suite 办公"] for line in listed)
    assert "Another product uses this API key" in refused(
        settings, "products", "create", "--name", "Twin", "--slug", f"{slug}-2", "--api-key", legacy_key
    )
    assert "slug" in refused(settings, "products", "create", "--name", "Twin", "--slug", slug)
    assert licsrv(settings, "products", "archive", slug) == f"product {slug} archived"
    assert "archived" in refused(settings, "licenses", "create", "--product", slug)
    assert "archived" in refused(settings, "plans", "create", "--product", slug, "--name", "Late")
    assert licsrv(settings, "products", "archive", slug, "--undo") == f"product {slug} open"
    assert "No product with slug" in refused(settings, "products", "archive", "no-such-product")


def test_plans_create_list_and_archive(settings):
    slug = f"cli-{secrets.token_hex(4)}"
    licsrv(settings, "products", "create", "--name", "Plans CLI", "--slug", slug)
    created = licsrv(
        settings,
        "plans", "create", "--product", slug, "--name", "Pro", "--max-devices", "2", "--duration-days", "30",
        "--feature", "pro=true", "--feature", "seats=5", "--feature", "tier=gold",
    )  # fmt: skip
    plan_id = created.split()[1].rstrip(":")
    line = next(
        x for x in licsrv(settings, "plans", "list", "--product", slug).splitlines() if x.startswith(plan_id)
    )
    fields = line.split("\t")
    assert fields[1:6] == [slug, "offered", "2 devices", "default sessions", "30 days"]
    assert json.loads(fields[6]) == {"pro": True, "seats": 5, "tier": "gold"} and fields[7] == "Pro"
    assert "twice" in refused(
        settings, "plans", "create", "--product", slug, "--name", "X", "--feature", "a=1", "--feature", "a=2"
    )
    assert "name=value" in refused(
        settings, "plans", "create", "--product", slug, "--name", "X", "--feature", "novalue"
    )
    assert "another plan named" in refused(settings, "plans", "create", "--product", slug, "--name", "pro")
    assert licsrv(settings, "plans", "archive", plan_id) == f"plan {plan_id} archived"
    assert "\tarchived\t" in licsrv(settings, "plans", "list", "--product", slug)
    assert "plan was not found" in refused(settings, "plans", "archive", "999999999")
