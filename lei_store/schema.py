"""Loads the SQL DDL kept in schemas/ (installed as the lei_store.schemas package)."""

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def schema_dir() -> Path:
    """lei_store/schemas in an installed wheel; the checkout's schemas/ in an editable install
    (setup.sh uses setuptools' compat mode: a plain path entry, no import hook to load at start-up)."""
    installed = _HERE / "schemas"
    return installed if installed.is_dir() else _HERE.parent / "schemas"


@cache
def ddl(name: str) -> str:
    """The text of schemas/NAME.sql."""
    return (schema_dir() / f"{name}.sql").read_text()
