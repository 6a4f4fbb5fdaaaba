"""`CrossStudyQueries`: reads across several studies: their answers side by side (compare: each study's best
configuration by `repeats.study_answer`, the function the status's summary takes it from, without the summary's
GP fit) and against the one task option that varies between them (trend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from afpe.search.repeats import CONFIDENCE, study_answer
from afpe.search.spec import SearchSpace
from afpe.service.errors import Conflict
from afpe.service.manager.study_reads import StudyReads
from afpe.service.manager.views import BestEstimateView, CompareResult, CompareRow, TrendResult
from afpe.service.plots import compare, trend


class CrossStudyQueries:
    def __init__(self, reads: StudyReads):
        self.reads = reads

    def compare(self, names: Sequence[str]) -> CompareResult:
        """The answers of the named studies (each once): each best configuration with its 95 % t-interval, the
        status's, and how their specs differ besides encoding."""
        records = [self.reads.record(name) for name in dict.fromkeys(names)]
        rows = []
        for record in records:
            space = SearchSpace.from_spec(record.spec)
            answer = study_answer(self.reads.trials(record.name), space.direction, space.ratio)
            rows.append(
                CompareRow(
                    name=record.name,
                    encoding=space.encoding,
                    state=record.state,
                    metric=space.metric,
                    direction=space.direction,
                    best=None if answer is None else BestEstimateView(**compare.best_view(answer.best)),
                )
            )
        differences = compare.spec_differences({r.name: r.spec for r in records})
        return CompareResult(studies=rows, comparable=not differences, differences=differences, confidence=CONFIDENCE)

    def trend(self, names: Sequence[str]) -> TrendResult:
        """The answers of the named studies against the one task option that varies between them (Conflict when
        they do not differ in exactly one option)."""
        records = [self.reads.record(name) for name in names]
        try:
            result = trend.trend_data([(r.name, r.spec, self.reads.trials(r.name)) for r in records])
        except ValueError as error:
            raise Conflict(str(error)) from None
        return TrendResult.model_validate(asdict(result))
