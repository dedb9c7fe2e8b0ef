"""JSON Schemas of lei_store's machine output, generated from the msgspec structs into schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec


def schemas() -> dict[str, dict]:
    from lei_store.disk.feed import Change, Highest
    from lei_store.disk.mailboxes import Mailbox
    from lei_store.disk.quota import Quota
    from lei_store.disk.savedsearch import Listing
    from lei_store.ops.backup import BackupStats
    from lei_store.ops.folders import FolderStats
    from lei_store.ops.fsck import FsckReport
    from lei_store.ops.gc import GcStats
    from lei_store.ops.mailbox import MailboxResult
    from lei_store.ops.purge import PurgeResult
    from lei_store.ops.reindex import ReindexStats
    from lei_store.ops.tagging import TagStats
    from lei_store.ops.up import UpStats
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
        "mailboxes.schema.json": msgspec.json.schema(list[Mailbox]),
        "mailbox-result.schema.json": msgspec.json.schema(MailboxResult),
        "change.schema.json": msgspec.json.schema(Change),  # changes/watch: one object per line
        "changes-end.schema.json": msgspec.json.schema(Highest),  # changes: the last line
        "quota.schema.json": msgspec.json.schema(Quota),
        "purge-result.schema.json": msgspec.json.schema(PurgeResult),
        "up-stats.schema.json": msgspec.json.schema(list[UpStats]),
        "ls-search.schema.json": msgspec.json.schema(list[Listing]),
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> None:
    for name, schema in schemas().items():
        (directory / name).write_text(render(schema))


if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "schemas")
