"""The statuses and stages the store records, as :class:`enum.StrEnum` classes.

A member *is* its value (``Status.DONE == "done"``, ``json.dumps(Status.DONE) == '"done"'``,
``f"{Status.DONE}" == "done"``), so the columns stay ``String`` columns holding the same words
as before, rows read back as plain strings compare equal to the members, and no migration is
involved. Code writes and compares the members; ``Status("bogus")`` raises ``ValueError``.

This module imports nothing beyond :mod:`enum`, so a command that only reads a status (``knas
status``) can use it without loading SQLAlchemy.
"""

from __future__ import annotations

from enum import StrEnum, nonmember

__all__ = ["CandidateStage", "DiscoveryStage", "SearchStage", "Status", "TrainingStatus"]


class Status(StrEnum):
    """Lifecycle of a search or a discovery run: ``queued -> running -> done | failed |
    cancelled`` (a queued one may also be cancelled at once)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    #: The statuses a run never leaves (their values; ``status in Status.ENDED``).
    ENDED = nonmember((DONE, FAILED, CANCELLED))
    #: The statuses of a run that has not ended: waiting in the queue or being worked on.
    ACTIVE = nonmember((QUEUED, RUNNING))

    @property
    def ended(self) -> bool:
        """Whether a run with this status has ended (done, failed or cancelled)."""
        return self in Status.ENDED


class SearchStage(StrEnum):
    """Where a search is: ``queued``, then ``sample -> score -> select -> evaluate`` for the
    staged (chunked) strategies or ``search`` for one run whole by a worker, which then reports
    ``score`` and ``evaluate`` as it goes; ``done`` once it finished successfully."""

    QUEUED = "queued"
    SAMPLE = "sample"
    SCORE = "score"
    SELECT = "select"
    EVALUATE = "evaluate"
    SEARCH = "search"
    DONE = "done"


class CandidateStage(StrEnum):
    """How far one sampled architecture of a search got."""

    SAMPLED = "sampled"
    SCORED = "scored"
    #: Among the top-k by score, waiting for its evaluation.
    SELECTED = "selected"
    EVALUATED = "evaluated"


class TrainingStatus(StrEnum):
    """State of a training run of one architecture (a cancelled one stays ``running`` and
    resumes from its checkpoint)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DiscoveryStage(StrEnum):
    """Where a proxy-discovery run is: ``queued -> gather -> evolve -> done`` (``gather`` and
    ``evolve`` are the stages :func:`knas_core.discovery.run.run_discovery` reports)."""

    QUEUED = "queued"
    GATHER = "gather"
    EVOLVE = "evolve"
    DONE = "done"
