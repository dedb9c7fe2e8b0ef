"""A progress line on stderr for long work; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress line on stderr: done/total and rate, redrawn at most ten times a second."""
    def __init__(self, what: str, total: int | None = None, *, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.what, self.total, self.done = what, total, 0
        self._start = self._last = time.monotonic()

    def expect(self, more: int) -> None:
        """Add to the known total (a source that knows its size, such as an IMAP folder)."""
        self.total = (self.total or self.done) + more

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-6)
        if self.total:
            width = 30
            fill = int(width * min(self.done / self.total, 1))
            bar = f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        self.stream.write(f"\r{self.what}: {bar} ({rate:.0f}/s)\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
