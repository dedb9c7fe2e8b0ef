"""Serving the store to clients: IMAP through pymap (imap.py, over the store view of view.py)."""
