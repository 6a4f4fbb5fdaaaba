"""Search: study specs, the Ray Tune driver recording every trial in an Optuna study, storage, the rules
of a study's trials (`analysis.py`), summaries and exports."""

from afpe.search.driver import run_study
from afpe.search.spec import (
    AshaSpec,
    AxisSpec,
    ResourcesSpec,
    SearchSpace,
    SpecError,
    StudySpec,
    load_spec,
    validate_spec,
)
from afpe.search.summary import StudySummary, summarize

__all__ = [
    "AshaSpec",
    "AxisSpec",
    "ResourcesSpec",
    "SearchSpace",
    "SpecError",
    "StudySpec",
    "StudySummary",
    "load_spec",
    "run_study",
    "summarize",
    "validate_spec",
]
