"""The read side: search with lei's query language, and write results out. Takes no lock and
imports nothing of the write side.
"""
