"""The store's files as every reader sees them (lei-store-format(5)): over.sqlite3 (Over),
the Xapian shards, the journal, mail_sync, the epochs' history and blobs.
"""
