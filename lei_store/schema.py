"""Loads the SQL DDL kept in schemas/ (installed as the lei_store.schemas package)."""

from functools import cache
from importlib.resources import files


@cache
def ddl(name: str) -> str:
    """The text of schemas/NAME.sql."""
    return files("lei_store.schemas").joinpath(f"{name}.sql").read_text()
