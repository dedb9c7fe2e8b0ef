"""What q can be asked for: output formats, sorts and dedupe modes, named once for the library
and the command line (which offers exactly these as choices). Imports nothing: q's parser
is built from it on every run."""

MBOX_FORMATS = ("mboxrd", "mboxo", "mboxcl", "mboxcl2")  # lei's; sources.MBOX_FORMATS is this tuple
JSON_FORMATS = ("json", "jsonl", "ldjson", "ndjson", "concatjson")
MAIL_FORMATS = ("maildir",) + MBOX_FORMATS
TEXT_FORMATS = ("text", "summary")
Q_FORMATS = JSON_FORMATS + TEXT_FORMATS + MAIL_FORMATS
SORTS = ("received", "relevance", "docid")
DEDUPES = ("content", "oid", "mid", "none")
