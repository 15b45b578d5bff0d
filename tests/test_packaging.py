from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from licsrv import settings as settings_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.ci
def test_wheel_ships_every_sql_file_and_template(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("licsrv-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    data_prefix = next(n.split("/data/")[0] for n in names if "/data/share/licsrv/" in n)
    expected = [p for folder in ("sql", "templates") for p in (ROOT / folder).rglob("*") if p.is_file()]
    missing = [
        str(p.relative_to(ROOT))
        for p in expected
        if f"{data_prefix}/data/share/licsrv/{p.relative_to(ROOT)}" not in names
    ]
    assert expected and not missing, f"not shipped in the wheel (setup.cfg data_files): {missing}"
    scripts = [p.name for p in (ROOT / "src" / "licsrv" / "live").glob("*.lua")]
    unshipped = [name for name in scripts if f"licsrv/live/{name}" not in names]
    assert scripts and not unshipped, f"Lua scripts not in the wheel (setup.cfg package_data): {unshipped}"


def test_installed_layout_is_found_under_the_prefix(tmp_path, monkeypatch):
    (tmp_path / "share" / "licsrv" / "sql").mkdir(parents=True)
    monkeypatch.setattr(
        settings_module, "__file__", str(tmp_path / "lib" / "site-packages" / "licsrv" / "settings.py")
    )
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert settings_module._find_data_dir("sql") == tmp_path / "share" / "licsrv" / "sql"
