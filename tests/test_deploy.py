"""The deployment files: the backup script's behaviour, and that the manifests say what they should."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DAY = 86400


def run_backup(tmp_path: Path, pg_dump_body: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pg_dump"
    fake.write_text("#!/usr/bin/env bash\n" + pg_dump_body)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP_DIR": str(tmp_path / "backups")}
    return subprocess.run(
        ["bash", str(DEPLOY / "backup.sh"), "postgresql://x@127.0.0.1/licsrv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


WRITE_DUMP = 'for a in "$@"; do case $a in --file=*) echo dump > "${a#--file=}";; esac; done\n'


def test_backup_writes_a_dump_and_keeps_thirty_days(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    old, recent, foreign = (
        backups / "licsrv-20200101-000000.dump",
        backups / "licsrv-20261101-000000.dump",
        backups / "notes.txt",
    )
    for path in (old, recent, foreign):
        path.write_text("x")
    os.utime(old, (time.time() - 40 * DAY,) * 2)
    os.utime(recent, (time.time() - 5 * DAY,) * 2)
    os.utime(foreign, (time.time() - 90 * DAY,) * 2)

    result = run_backup(tmp_path, WRITE_DUMP)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in backups.iterdir())
    new = [n for n in names if n not in {recent.name, foreign.name}]
    assert len(new) == 1 and new[0].startswith("licsrv-") and new[0].endswith(".dump")
    assert not old.exists() and recent.exists() and foreign.exists()


def test_failed_dump_leaves_no_file_and_fails(tmp_path):
    result = run_backup(tmp_path, WRITE_DUMP + "exit 3\n")
    assert result.returncode != 0
    assert "pg_dump failed" in result.stderr
    assert list((tmp_path / "backups").iterdir()) == []


@pytest.mark.parametrize("script", sorted(DEPLOY.rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0


def test_kubernetes_probes_point_at_health_and_ready():
    deployment = (DEPLOY / "k8s" / "deployment.yaml").read_text()
    assert "livenessProbe:\n            httpGet: {path: /health" in deployment
    assert "readinessProbe:\n            httpGet: {path: /ready" in deployment
    listed = (DEPLOY / "k8s" / "kustomization.yaml").read_text()
    for manifest in (DEPLOY / "k8s").glob("*.yaml"):
        if manifest.name not in {"kustomization.yaml", "secret.example.yaml"}:
            assert manifest.name in listed, f"{manifest.name} is not in kustomization.yaml"


def test_env_example_names_every_setting_the_code_reads():
    import re

    example = (DEPLOY.parent / ".env.example").read_text()
    source = (DEPLOY.parent / "src" / "licsrv" / "settings.py").read_text()
    read = set(re.findall(r'"(LICSRV_[A-Z_]+)"', source))
    assert {"LICSRV_DATABASE_URL", "LICSRV_REDIS_URL", "LICSRV_SECRET_KEY"} <= read
    assert sorted(name for name in read if name not in example) == []
