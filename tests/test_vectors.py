"""The client libraries' test vectors are the server's own output: written again, they must not differ."""

from __future__ import annotations

from pathlib import Path

from licsrv import vectors

CHECKED_IN = Path(__file__).resolve().parent.parent / "clients" / "vectors"


def test_vectors_are_what_the_server_writes_today(tmp_path):
    vectors.write(tmp_path)
    fresh = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()}
    kept = {path.name: path.read_text(encoding="utf-8") for path in CHECKED_IN.glob("*.json")}
    assert sorted(fresh) == sorted(kept), "run `licsrv vectors --out clients/vectors`"
    for name, text in fresh.items():
        assert kept[name] == text, f"{name} differs: run `licsrv vectors --out clients/vectors`"


def test_the_server_package_does_not_import_the_client_package():
    source = Path(vectors.__file__).resolve().parent
    importers = [p.name for p in source.rglob("*.py") if "licsrv_client" in p.read_text(encoding="utf-8")]
    assert importers == []
