"""Progress bars on stderr for the commands that run work in-process (``knas search``,
``knas evolve``): one bar per stage, fed by the library's ``progress(stage, done, total)``."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class StageBars:
    """A ``progress(stage, done, total)`` callback that keeps one tqdm bar per stage; a context
    manager that closes them all, however the work ends.

    >>> with StageBars() as bars:      # e.g. SearchRun(config).run(progress=bars)
    ...     for done in range(1, 4):
    ...         bars("score", done, 3)    # the bar "score 3/3" on stderr
    >>> bars["score"].n, bars["score"].total
    (3, 3)
    """

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr)
        bar.total, bar.n = total, done
        bar.refresh()

    def __getitem__(self, stage: str) -> tqdm:
        """The bar of ``stage`` (e.g. to set its postfix); KeyError before its first update."""
        return self.bars[stage]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
