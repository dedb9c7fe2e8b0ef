-- mail_sync.sqlite3 as lei 1.9 creates it (lei-store-format(5)). loc, name and oidbin are
-- always bound as BLOBs: lei looks them up with BLOB parameters and TEXT never equals BLOB.
CREATE TABLE IF NOT EXISTS folders (
  fid INTEGER PRIMARY KEY,
  loc VARBINARY NOT NULL,
  UNIQUE (loc)
);
CREATE TABLE IF NOT EXISTS blob2num (
  oidbin VARBINARY NOT NULL,
  fid INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  UNIQUE (oidbin, fid, uid)
);
CREATE INDEX IF NOT EXISTS idx_fid_uid ON blob2num(fid,uid);
CREATE TABLE IF NOT EXISTS blob2name (
  oidbin VARBINARY NOT NULL,
  fid INTEGER NOT NULL,
  name VARBINARY NOT NULL,
  UNIQUE (oidbin, fid, name)
);
CREATE INDEX IF NOT EXISTS idx_fid_name ON blob2name(fid,name);
-- Ours, not lei's (lei ignores it): an IMAP folder's HIGHESTMODSEQ when its flags were last
-- brought up to date, so the next import asks only for what changed since (CONDSTORE, RFC 7162).
CREATE TABLE IF NOT EXISTS lei_store_imap_modseq (
  fid INTEGER PRIMARY KEY,
  modseq INTEGER NOT NULL
);
