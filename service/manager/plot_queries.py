"""`PlotQueries`: a study's plots as Plotly JSON with an ETag, each built once per `study_version` and state
filter (`afpe.service.plots.kinds`). The version is found without reading the trials (`StudyReads.version`); a
figure of every trial is kept across restarts (`derived_store`), at most FILTERED_KEPT filtered ones in memory
(a study has 31 `?state=` filters per kind)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from afpe.search.spec import SearchSpace
from afpe.service.errors import Conflict
from afpe.service.manager.derived_store import DerivedStore, KeptByVersion
from afpe.service.manager.study_reads import LatestByVersion, StudyReads
from afpe.service.plots.kinds import build_figure

FILTERED_KEPT = 32


class PlotQueries:
    def __init__(self, reads: StudyReads, store: DerivedStore):
        """`store`: where the figures of every trial are kept per study version."""
        self.reads = reads
        self.store = store
        self._figures: dict[str, KeptByVersion] = {}  # plot kind -> its figures of every trial
        self._filtered = LatestByVersion(size=FILTERED_KEPT)

    def figure(self, name: str, kind: str, unless: str = "", states: Sequence[str] = ()) -> tuple[str, str | None]:
        """(the ETag of plot `kind` of study `name`: a hash of its Plotly JSON, that JSON; None when the ETag is
        in `unless`, an If-None-Match header). `states`: only trials in these states (all if empty). A figure is
        built once per `study_version` and state filter, so a new version whose figure of this kind is the same
        keeps its ETag. NotFound for an unknown study; Conflict when the study (or the filter) leaves no data for
        the plot."""
        record = self.reads.record(name)
        version = self.reads.version(name, record.spec)
        chosen = tuple(sorted(set(states)))

        def build() -> list[str]:
            trials = self.reads.trials(name)
            shown = [t for t in trials if t.state.name in chosen] if chosen else trials
            try:
                text = build_figure(kind, shown, SearchSpace.from_spec(record.spec)).to_json()
            except ValueError as error:
                raise Conflict(f"plot {kind}: {error}") from None
            return [f'"{hashlib.blake2b(text.encode(), digest_size=12).hexdigest()}"', text]

        if chosen:
            etag, text = self._filtered.get((name, kind, chosen), version, build)
        else:
            kept = self._figures.setdefault(kind, KeptByVersion(self.store, f"plot:{kind}"))
            etag, text = kept.get(name, version, build)
        return etag, None if etag in unless else text
