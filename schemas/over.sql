-- ei15/over.sqlite3 as lei 1.9 creates it (lei-store-format(5)); every statement is idempotent
-- because lei also adds missing tables whenever it opens a store.
CREATE TABLE IF NOT EXISTS over (
  num INTEGER PRIMARY KEY NOT NULL,
  tid INTEGER NOT NULL,
  sid INTEGER,
  ts INTEGER,
  ds INTEGER,
  ddd VARBINARY
);
CREATE INDEX IF NOT EXISTS idx_tid ON over (tid);
CREATE INDEX IF NOT EXISTS idx_sid ON over (sid);
CREATE INDEX IF NOT EXISTS idx_ts ON over (ts);
CREATE INDEX IF NOT EXISTS idx_ds ON over (ds);
CREATE TABLE IF NOT EXISTS counter (
  key VARCHAR(8) PRIMARY KEY NOT NULL,
  val INTEGER DEFAULT 0,
  UNIQUE (key)
);
CREATE TABLE IF NOT EXISTS subject (
  sid INTEGER PRIMARY KEY AUTOINCREMENT,
  path VARCHAR(40) NOT NULL,
  UNIQUE (path)
);
CREATE TABLE IF NOT EXISTS id2num (
  id INTEGER NOT NULL,
  num INTEGER NOT NULL,
  UNIQUE (id, num)
);
CREATE INDEX IF NOT EXISTS idx_inum ON id2num (num);
CREATE INDEX IF NOT EXISTS idx_id ON id2num (id);
CREATE TABLE IF NOT EXISTS msgid (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mid VARCHAR(244) NOT NULL,
  UNIQUE (mid)
);
INSERT OR IGNORE INTO counter (key, val) VALUES ('thread', 0);
INSERT OR IGNORE INTO counter (key, val) VALUES ('ghost', 0);
INSERT OR IGNORE INTO counter (key, val) VALUES ('eidx_docid', 0);
CREATE TABLE IF NOT EXISTS inboxes (
  ibx_id INTEGER PRIMARY KEY AUTOINCREMENT,
  eidx_key VARCHAR(255) NOT NULL,
  UNIQUE (eidx_key)
);
CREATE TABLE IF NOT EXISTS xref3 (
  docid INTEGER NOT NULL,
  ibx_id INTEGER NOT NULL,
  xnum INTEGER NOT NULL,
  oidbin VARBINARY NOT NULL,
  UNIQUE (docid, ibx_id, xnum, oidbin)
);
CREATE INDEX IF NOT EXISTS idx_docid ON xref3 (docid);
CREATE INDEX IF NOT EXISTS idx_reindex ON xref3 (xnum,ibx_id);
CREATE INDEX IF NOT EXISTS idx_oidbin ON xref3 (oidbin);
CREATE TABLE IF NOT EXISTS eidx_meta (
  key VARCHAR(255) PRIMARY KEY,
  val VARCHAR(255) NOT NULL
);
CREATE TABLE IF NOT EXISTS eidxq (docid INTEGER PRIMARY KEY NOT NULL);
