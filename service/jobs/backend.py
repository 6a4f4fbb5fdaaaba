"""`JobBackend`: what the study lifecycle needs from a cluster that runs study jobs.

A study attempt is one job with the deterministic id `afpe-<study>-<attempt>` (`submission_id`), so a service
that restarts finds its jobs again and never submits an attempt twice. Job states are `StudyState`s: a job is
queued, running, succeeded, failed or cancelled exactly as its study is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from afpe.service.manager.records import StudyState


@dataclass(frozen=True)
class JobState:
    state: StudyState
    message: str


def submission_id(study: str, attempt: int) -> str:
    return f"afpe-{study}-{attempt}"


class JobBackend(Protocol):
    """A cluster that runs `afpe run spec.json [--resume]` as jobs. Any method may raise when the cluster
    cannot be reached; the lifecycle keeps the study queued and tries again on the next refresh."""

    def submit(self, study: str, attempt: int, spec: dict[str, Any], resume: bool) -> str:
        """Submit attempt `attempt` of `study` (idempotent: an already submitted id is left as it is);
        returns the job id."""
        ...

    def state(self, job_id: str) -> JobState | None:
        """The job's state, or None when the cluster does not know the job (e.g. a restarted private head)."""
        ...

    def failure_text(self, job_id: str) -> str:
        """Why the job failed: its message and the tail of its logs."""
        ...

    def stop(self, job_id: str) -> StudyState | None:
        """Stop the job and wait until it no longer runs; its final state (None if unknown)."""
        ...

    def close(self) -> None:
        """Release what the backend started (a private head); called once at service shutdown."""
        ...
