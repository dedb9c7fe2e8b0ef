"""What a message is, as lei sees it: headers, ids, dates, addresses, MIME parts, charsets,
the content hash, keywords, and the Xapian terms of a message. Nothing here touches a store.
"""
