"""What q can be asked for: output formats, sorts and dedupe modes, named once for the library
and the command line (which offers exactly these as choices)."""

from lei_store.sources.items import MBOX_FORMATS

JSON_FORMATS = ("json", "jsonl", "ldjson", "ndjson", "concatjson")
MAIL_FORMATS = ("maildir",) + MBOX_FORMATS
TEXT_FORMATS = ("text", "summary")
Q_FORMATS = JSON_FORMATS + TEXT_FORMATS + MAIL_FORMATS
SORTS = ("received", "relevance", "docid")
DEDUPES = ("content", "oid", "mid", "none")
