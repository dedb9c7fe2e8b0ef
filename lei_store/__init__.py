"""lei_store: a content-addressed, git-backed mail archive store compatible with lei 1.9."""

__version__ = "0.1.0"
