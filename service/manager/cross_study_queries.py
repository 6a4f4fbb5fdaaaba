"""`CrossStudyQueries`: reads across several studies: their best values side by side (compare) and their
answers against the one task option that varies between them (trend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from afpe.search.spec import SearchSpace
from afpe.service.errors import Conflict
from afpe.service.manager.study_reads import StudyReads
from afpe.service.manager.views import BestEstimateView, CompareResult, CompareRow, TrendResult
from afpe.service.plots import compare, trend


class CrossStudyQueries:
    def __init__(self, reads: StudyReads):
        self.reads = reads

    def compare(self, names: Sequence[str]) -> CompareResult:
        """Best values of the named studies (each once) with bootstrap CIs, and how their specs differ besides
        encoding."""
        records = [self.reads.record(name) for name in dict.fromkeys(names)]
        rows = []
        for record in records:
            space = SearchSpace.from_spec(record.spec)
            estimate = compare.best_estimate(self.reads.trials(record.name), space.direction)
            rows.append(
                CompareRow(
                    name=record.name,
                    encoding=space.encoding,
                    state=record.state,
                    metric=space.metric,
                    direction=space.direction,
                    best=None if estimate is None else BestEstimateView(**estimate.__dict__),
                )
            )
        differences = compare.spec_differences({r.name: r.spec for r in records})
        return CompareResult(
            studies=rows, comparable=not differences, differences=differences, confidence=compare.CONFIDENCE
        )

    def trend(self, names: Sequence[str]) -> TrendResult:
        """The answers of the named studies against the one task option that varies between them (Conflict when
        they do not differ in exactly one option)."""
        records = [self.reads.record(name) for name in names]
        try:
            result = trend.trend_data([(r.name, r.spec, self.reads.trials(r.name)) for r in records])
        except ValueError as error:
            raise Conflict(str(error)) from None
        return TrendResult.model_validate(asdict(result))
