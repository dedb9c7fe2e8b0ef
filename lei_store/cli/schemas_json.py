"""JSON Schemas of lei_store's machine output, generated from the msgspec structs into schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec


def schemas() -> dict[str, dict]:
    from lei_store.ops.backup import BackupStats
    from lei_store.ops.folders import FolderStats
    from lei_store.ops.fsck import FsckReport
    from lei_store.ops.gc import GcStats
    from lei_store.ops.reindex import ReindexStats
    from lei_store.ops.tagging import TagStats
    from lei_store.read.search import Result
    from lei_store.write.writer import ImportStats

    return {
        "q-result.schema.json": msgspec.json.schema(Result),
        "import-stats.schema.json": msgspec.json.schema(ImportStats),
        "tag-stats.schema.json": msgspec.json.schema(TagStats),
        "folder-stats.schema.json": msgspec.json.schema(list[FolderStats]),
        "reindex-stats.schema.json": msgspec.json.schema(ReindexStats),
        "fsck-report.schema.json": msgspec.json.schema(FsckReport),
        "backup-stats.schema.json": msgspec.json.schema(BackupStats),
        "gc-stats.schema.json": msgspec.json.schema(GcStats),
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> None:
    for name, schema in schemas().items():
        (directory / name).write_text(render(schema))


if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "schemas")
