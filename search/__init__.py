"""Search: study specs, the Ray Tune driver recording every trial in an Optuna study, storage, the rules
of a study's trials (`analysis.py`), summaries and exports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from afpe.core.lazy import lazy_exports

if TYPE_CHECKING:
    from afpe.search.driver import run_study
    from afpe.search.spec import (
        AshaSpec,
        AxisSpec,
        ResourcesSpec,
        SearchSpace,
        SpecError,
        StudySpec,
    )
    from afpe.search.spec_loading import load_spec, validate_spec
    from afpe.search.summary import StudySummary, summarize

__getattr__ = lazy_exports(
    __name__,
    {
        "AshaSpec": "afpe.search.spec",
        "AxisSpec": "afpe.search.spec",
        "ResourcesSpec": "afpe.search.spec",
        "SearchSpace": "afpe.search.spec",
        "SpecError": "afpe.search.spec",
        "StudySpec": "afpe.search.spec",
        "StudySummary": "afpe.search.summary",
        "load_spec": "afpe.search.spec_loading",
        "run_study": "afpe.search.driver",
        "summarize": "afpe.search.summary",
        "validate_spec": "afpe.search.spec_loading",
    },
)

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
