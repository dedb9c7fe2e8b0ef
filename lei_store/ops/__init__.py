"""One module per command's policy (as lei's LeiImport, LeiTag...): import, tag/rm, reindex,
replicas, fsck and repair, backups, gc, the synced folders' commands, export-kw.
"""
