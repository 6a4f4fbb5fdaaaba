"""`PlotQueries`: a study's plots as Plotly JSON with an ETag, each built once per `study_version` and state
filter (`afpe.service.plots.kinds`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from afpe.search.spec import SearchSpace
from afpe.service.errors import Conflict
from afpe.service.manager.study_reads import LatestByVersion, StudyReads, study_version
from afpe.service.plots.kinds import build_figure


class PlotQueries:
    def __init__(self, reads: StudyReads):
        self.reads = reads
        self._figures = LatestByVersion()

    def figure(self, name: str, kind: str, unless: str = "", states: Sequence[str] = ()) -> tuple[str, str | None]:
        """(the ETag of plot `kind` of study `name`: a hash of its Plotly JSON, that JSON; None when the ETag is
        in `unless`, an If-None-Match header). `states`: only trials in these states (all if empty). A figure is
        built once per `study_version` and state filter, so a new version whose figure of this kind is the same
        keeps its ETag. NotFound for an unknown study; Conflict when the study (or the filter) leaves no data for
        the plot."""
        record = self.reads.record(name)
        trials = self.reads.trials(name)
        chosen = tuple(sorted(set(states)))

        def build() -> tuple[str, str]:
            shown = [t for t in trials if t.state.name in chosen] if chosen else trials
            try:
                text = build_figure(kind, shown, SearchSpace.from_spec(record.spec)).to_json()
            except ValueError as error:
                raise Conflict(f"plot {kind}: {error}") from None
            return f'"{hashlib.blake2b(text.encode(), digest_size=12).hexdigest()}"', text

        etag, text = self._figures.get((name, kind, chosen), study_version(record.spec, trials), build)
        return etag, None if etag in unless else text
