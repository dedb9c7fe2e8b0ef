"""JSON Schemas of lei_store's machine output, generated from the msgspec structs into schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec


def schemas() -> dict[str, dict]:
    from .search import Result
    from .store import ImportStats

    return {
        "q-result.schema.json": msgspec.json.schema(Result),
        "import-stats.schema.json": msgspec.json.schema(ImportStats),
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> None:
    for name, schema in schemas().items():
        (directory / name).write_text(render(schema))


if __name__ == "__main__":
    write(Path(__file__).resolve().parents[1] / "schemas")
