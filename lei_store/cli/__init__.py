"""The `lei-store` command: the light client, the argument parsing and commands, the resident
reader daemon and its protocol, progress lines, JSON Schemas. Empty on purpose: the client
imports this package on every run.
"""
