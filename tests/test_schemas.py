"""The JSON Schemas in schemas/ are generated from the code and must be current."""

from pathlib import Path

from lei_store.cli.schemas_json import render, schemas

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_json_schemas_are_current():
    for name, schema in schemas().items():
        assert (SCHEMAS / name).read_text() == render(schema), \
            f"schemas/{name} is stale: run python -m lei_store.cli.schemas_json"


def test_sql_schemas_are_what_the_code_uses():
    from lei_store.schema import ddl

    assert "CREATE TABLE IF NOT EXISTS xref3" in ddl("over")
    assert "CREATE TABLE IF NOT EXISTS blob2name" in ddl("mail_sync")
