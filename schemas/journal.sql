-- journal.sqlite3: lei_store's append-only record of keyword and label changes (lei keeps these
-- only in Xapian, so a rebuilt index would lose them). lei ignores this file.
-- Each row is the full keyword/label state of one message after a change, keyed by a blob
-- of the message (blob OIDs survive a reindex; docids need not). op 'rm' records `lei-store rm`.
CREATE TABLE IF NOT EXISTS volatile (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  oidbin BLOB NOT NULL,
  op TEXT NOT NULL DEFAULT 'set' CHECK (op IN ('set', 'rm')),
  kw TEXT NOT NULL DEFAULT '',
  labels TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_volatile_oid ON volatile (oidbin, seq);
