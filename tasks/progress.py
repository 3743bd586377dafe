"""Throttled progress reports: workers write progress to the store at most once a second."""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressThrottle:
    """Lets a report through when ``interval`` seconds have passed since the last one that
    went through, and always the final one (``done >= total``), so a finished stage is never
    left showing a stale count.
    """

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def due(self, done: int, total: int) -> bool:
        now = self._clock()
        if done < total and self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True
