from __future__ import annotations

import pytest

from licsrv.db import Queries, parse_sql_file

SQL = """
-- name: get_one(key)^
SELECT * FROM t WHERE key = $1;

-- name: count_all$
SELECT count(*) FROM t;

-- name: touch(id, at)!
UPDATE t SET at = $2
WHERE id = $1;

-- name: many
SELECT 1;
"""


def test_headers_give_name_parameters_and_kind():
    queries = {q.name: q for q in parse_sql_file(SQL)}
    assert queries["get_one"].kind == "^" and queries["get_one"].params == ["key"]
    assert queries["count_all"].kind == "$" and queries["count_all"].params == []
    assert queries["touch"].kind == "!" and queries["touch"].params == ["id", "at"]
    assert queries["touch"].sql == "UPDATE t SET at = $2\nWHERE id = $1"
    assert queries["many"].kind == "*"


def test_keyword_arguments_map_to_positions_in_header_order():
    touch = {q.name: q for q in parse_sql_file(SQL)}["touch"]
    assert touch._args((), {"at": "later", "id": 7}) == (7, "later")
    with pytest.raises(TypeError, match="unexpected"):
        touch._args((), {"id": 1, "at": 2, "bogus": 3})
    with pytest.raises(TypeError, match="missing"):
        touch._args((), {"id": 1})


def test_every_shipped_statement_loads_once(settings):
    queries = Queries.load(settings.sql_dir / "queries")
    assert "get_product" in queries
    assert "list_signing_keys" in queries


def test_a_duplicate_name_is_an_error(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: x$\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: x$\nSELECT 2;\n")
    with pytest.raises(ValueError, match="defined twice"):
        Queries.load(tmp_path)
