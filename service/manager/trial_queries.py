"""`TrialQueries`: a study's trials table (sorted, filtered, paged; read without learning curves over
`trial_reads.TrialRowCache`), a page of whole trials, and one trial with its sanitised error and log file name."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from afpe.search.analysis import REPEAT_OF, scale_ratio
from afpe.search.kept_models import trial_checkpoint
from afpe.search.spec import PARAM_PREFIX, SearchSpace
from afpe.search.trial_reads import TrialRow, TrialRowCache, trials_by_number
from afpe.service.errors import InvalidInput, NotFound
from afpe.service.manager.study_reads import LatestByVersion, StudyReads
from afpe.service.manager.views import TrialDetail, TrialItem, TrialRowView, TrialsPage

#: the user attrs a row of the trials table shows
ROW_ATTRS = ("seed", REPEAT_OF, "seconds", "epochs")
#: the columns a trials table sorts by, besides each scale s_<axis>
ROW_COLUMNS = ("number", "state", "value", "ratio", *ROW_ATTRS)


@dataclass(frozen=True)
class TrialQuery:
    """Which trials a table shows: those in `states` (all when empty), sorted by `sort` (a ROW_COLUMNS name or
    a scale s_<axis>; missing values last, ties in number order) in `order` ('asc', 'desc'), `limit` of them
    from `offset`."""

    sort: str = "number"
    order: str = "asc"
    states: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 100


class TrialQueries:
    def __init__(self, reads: StudyReads):
        self.reads = reads
        self.rows = TrialRowCache(reads.storage, ROW_ATTRS)
        self._orderings = LatestByVersion(size=32)  # trials tables' orderings: a list of every row each
        self._items = LatestByVersion(size=5_000)  # whole ended trials of the trials pages, by study and number

    def trial_table(self, name: str, query: TrialQuery) -> tuple[int, list[TrialRowView], SearchSpace]:
        """(trials matching `query.states`, the rows of `query`'s page, the study's space) of study `name`, read
        without learning curves (`trial_reads.TrialRowCache`; each ordering kept while the rows and spec stay the
        same). InvalidInput naming `sort` for an unknown column."""
        record = self.reads.record(name)
        space = SearchSpace.from_spec(record.spec)
        columns = (*ROW_COLUMNS, *(axis.param for axis in space.axes))
        if query.sort not in columns:
            raise InvalidInput(f"sort: {query.sort!r} is not a column (valid: {', '.join(columns)})")
        version, rows = self.reads.read(lambda: self.rows.table(name), name)

        def order() -> list[TrialRow]:
            kept = [row for row in rows if row.state.name in query.states] if query.states else rows
            key = _sort_key(query.sort, space)  # on the plain rows: a view is built for the page's rows only
            present = sorted((r for r in kept if key(r) is not None), key=key, reverse=query.order == "desc")
            return present + [r for r in kept if key(r) is None]

        ordering = (name, query.sort, query.order, query.states)
        ordered = self._orderings.get(ordering, (version, json.dumps(record.spec, sort_keys=True)), order)
        page = [_row_view(row, space) for row in ordered[query.offset : query.offset + query.limit]]
        return len(ordered), page, space

    def trials(self, name: str, query: TrialQuery) -> TrialsPage:
        """The page of study `name`'s trials that `query` picks, each whole (its learning curve read for the
        page's trials only; an ended trial's item is kept, as it never changes)."""
        total, rows, _ = self.trial_table(name, query)
        storage = self.reads.storage
        study_id = self.reads.read(lambda: storage.get_study_id_from_name(name), name)
        items = {r.number: self._items.find((name, r.number), study_id) for r in rows}
        missing = [number for number, item in items.items() if item is None]
        whole = self.reads.read(lambda: trials_by_number(storage, name, missing), name) if missing else []
        by_number = {t.number: t for t in whole}
        for r in rows:
            if r.number in by_number:
                items[r.number] = self._trial_item(by_number[r.number], r)
                if by_number[r.number].state in TrialRowCache.FINISHED:
                    self._items.keep((name, r.number), study_id, items[r.number])
        return TrialsPage(
            total=total,
            offset=query.offset,
            limit=query.limit,
            sort=query.sort,
            order=query.order,
            items=[item for item in items.values() if item is not None],
        )

    def trial(self, name: str, number: int) -> tuple[TrialDetail, FrozenTrial, SearchSpace]:
        """Trial `number` of study `name` with its sanitised error and log file name, the trial as read, and the
        study's space; NotFound when there is none."""
        record = self.reads.record(name)
        space = SearchSpace.from_spec(record.spec)
        found = self.reads.read(lambda: trials_by_number(self.reads.storage, name, [number]), name)
        if not found:
            raise NotFound(f"number: study {name!r} has no trial {number}")
        trial = found[0]
        row = _row_view(TrialRow(trial.number, trial.state, trial.value, trial.params, trial.user_attrs), space)
        item = self._trial_item(trial, row)
        detail = TrialDetail(
            **item.model_dump(),
            error=item.user_attrs.get("error"),
            log=item.user_attrs.get("log"),
            checkpoint=f"/api/studies/{name}/trials/{number}/checkpoint" if trial_checkpoint(trial) else None,
        )
        return detail, trial, space

    def _trial_item(self, t: FrozenTrial, row: TrialRowView) -> TrialItem:
        """A whole trial as reads show it (its user attrs: `StudyReads.shown_attrs`)."""
        return TrialItem(
            **row.model_dump(),
            user_attrs=self.reads.shown_attrs(t.user_attrs),
            intermediate_values=t.intermediate_values,
            datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete,
        )


def _sort_key(column: str, space: SearchSpace) -> Callable[[TrialRow], Any]:
    """The value of `column` (a ROW_COLUMNS name or a scale s_<axis>) in a row; None where it has none."""
    if column.startswith(PARAM_PREFIX):
        return lambda row: row.params.get(column)
    if column in ROW_ATTRS:
        return lambda row: row.user_attrs.get(column)
    return {
        "number": lambda row: row.number,
        "state": lambda row: row.state.name,
        "value": lambda row: row.value,
        "ratio": lambda row: scale_ratio(row.params, space.ratio),
    }[column]


def _row_view(row: TrialRow, space: SearchSpace) -> TrialRowView:
    attrs = row.user_attrs
    return TrialRowView(
        number=row.number,
        state=row.state.name,
        value=row.value,
        params=row.params,
        ratio=scale_ratio(row.params, space.ratio),
        seed=attrs.get("seed"),
        repeat_of=attrs.get(REPEAT_OF),
        seconds=attrs.get("seconds"),
        epochs=attrs.get("epochs"),
    )
