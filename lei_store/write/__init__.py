"""The write side: the store and its single writer, and the writers of each file (epochs by
git fast-import, over.sqlite3, the Xapian shards), the per-message analysis, catch-up.
"""
