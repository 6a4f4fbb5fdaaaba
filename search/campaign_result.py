"""A campaign's result: the table the paper prints. For each value of the varied property, each encoding's
answer (the study's answer by `repeats.study_answer`: mean, 95 % t-interval, n; for scaled encodings the best
configuration's ratio with the tied range, and the smoothed optimum), the lead encoding (the first of
`vary.encoding`) against each other one as a difference of means with Welch's 95 % interval, and the trend
of the best ratio against the property. Served as JSON, CSV (one row per study) and Markdown.

Caveat stated beside the numbers: a searched study's best mean is the best of several configurations and
is biased upwards against a baseline's single configuration; the repeats (fresh seeds) shrink that bias but
do not remove it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from afpe.search.campaign import CampaignSpec, Member
from afpe.search.lease import StudyLeases
from afpe.search.repeats import Estimate, difference
from afpe.search.study_list import study_entry
from afpe.search.summary import StudySummary, summarize_trials

PENDING = "pending"
BIAS_NOTE = (
    "a searched study's best mean is the best of several configurations (biased upwards against a baseline's one "
    "configuration; its repeats with fresh seeds shrink the bias)"
)


@dataclass
class MemberResult:
    """One study of a campaign as it stands: `state` by `study_list.driver_state` (or `pending`)."""

    member: Member
    state: str
    summary: StudySummary | None

    @property
    def best(self) -> Estimate | None:
        return None if self.summary is None or self.summary.answer is None else self.summary.answer.best


def member_results(members: Sequence[Member], storage: optuna.storages.BaseStorage, leases: StudyLeases) -> list:
    """Each member's state and summary read from `storage` (reads only)."""
    results = []
    for member in members:
        try:
            study_id = storage.get_study_id_from_name(member.name)
        except KeyError:
            results.append(MemberResult(member, PENDING, None))
            continue
        attrs = storage.get_study_user_attrs(study_id)
        trials = storage.get_all_trials(study_id, deepcopy=False)
        holder = leases.holder(member.name)
        entry = study_entry(member.name, attrs, trials, None if holder is None else str(holder))
        space = member.spec.search_space()
        results.append(MemberResult(member, entry.state, summarize_trials(member.name, trials, space)))
    return results


def campaign_state(results: Sequence[MemberResult]) -> str:
    """`running` while a study runs or waits in the service's queue, `succeeded` when all did, `pending` before any
    started, else `incomplete` (some failed, were cancelled or never ran: running the campaign again resumes it)."""
    states = {r.state for r in results}
    if states & {"running", "queued"}:
        return "running"
    if states == {"succeeded"}:
        return "succeeded"
    if states == {PENDING}:
        return PENDING
    return "incomplete"


def campaign_table(campaign: CampaignSpec, results: Sequence[MemberResult]) -> dict[str, Any]:
    """The campaign's result as JSON data: `studies` (one row each), `comparisons` and `trend` (see module)."""
    properties = [key for key in campaign.vary if key != "encoding"]
    encodings = campaign.vary.get("encoding") or sorted({r.member.spec.encoding for r in results})
    rows = [study_row(r, properties) for r in results]
    by_key: dict[tuple[str, str], MemberResult] = {
        (property_label(r.member.values, properties), r.member.spec.encoding): r for r in results
    }
    comparisons = []
    trend = []
    for label in dict.fromkeys(property_label(r.member.values, properties) for r in results):
        lead = by_key.get((label, encodings[0]))
        for other in encodings[1:]:
            against = by_key.get((label, other))
            if lead is not None and against is not None:
                found = difference(lead.best, against.best)
                unknown = {"difference": None, "ci": None, "n": None}  # a side without an answer yet
                comparisons.append({"property": label, "lead": encodings[0], "against": other, **(found or unknown)})
        for encoding in encodings:
            result = by_key.get((label, encoding))
            if result is not None and result.summary is not None and result.summary.ratio is not None:
                row = study_row(result, properties)
                trend.append({"property": label, "encoding": encoding, **{k: row[k] for k in TREND_KEYS}})
    return {
        "campaign": campaign.name,
        "description": campaign.description,
        "vary": campaign.vary,
        "property": properties,
        "encodings": encodings,
        "state": campaign_state(results),
        "studies": rows,
        "comparisons": comparisons,
        "trend": trend,
        "note": BIAS_NOTE,
    }


TREND_KEYS = ("ratio", "ratio_low", "ratio_high", "optimum_ratio", "optimum_low", "optimum_high")
CSV_COLUMNS = (
    "study",
    "property",
    "encoding",
    "state",
    "finished",
    "n_trials",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    *TREND_KEYS,
)


def property_label(values: dict[str, Any], properties: Sequence[str]) -> str:
    """The varied property's values of a member as one label (`task_options.anisotropy=[1, 1, 4]`)."""
    return ", ".join(f"{key}={json.dumps(values[key])}" for key in properties) or "-"


def study_row(result: MemberResult, properties: Sequence[str]) -> dict[str, Any]:
    """One study as a flat row (None where nothing is known yet or no interval can be estimated)."""
    summary, best = result.summary, result.best
    answer = None if summary is None else summary.answer
    optimum = None if summary is None else summary.optimum
    ratio_range = answer.ratio_range if answer is not None and answer.repeated >= 2 else None  # one: no test
    return {
        "study": result.member.name,
        "property": property_label(result.member.values, properties),
        "encoding": result.member.spec.encoding,
        "state": result.state,
        "finished": 0 if summary is None else summary.finished,
        "n_trials": result.member.spec.n_trials,
        "mean": None if best is None else best.mean,
        "ci_low": None if best is None or best.ci is None else best.ci[0],
        "ci_high": None if best is None or best.ci is None else best.ci[1],
        "n": 0 if best is None else best.n,
        "ratio": None if best is None else best.ratio,
        "ratio_low": None if ratio_range is None else ratio_range[0],
        "ratio_high": None if ratio_range is None else ratio_range[1],
        "optimum_ratio": None if optimum is None else optimum.ratio,
        "optimum_low": None if optimum is None or optimum.ci is None else optimum.ci[0],
        "optimum_high": None if optimum is None or optimum.ci is None else optimum.ci[1],
    }


def table_csv(table: dict[str, Any]) -> str:
    """The table's studies as CSV, one row per study, empty cells where nothing is known."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table["studies"]:
        writer.writerow({key: "" if row[key] is None else row[key] for key in CSV_COLUMNS})
    return out.getvalue()


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _interval(low: float | None, high: float | None) -> str:
    return "not estimable" if low is None or high is None else f"[{_number(low)}, {_number(high)}]"


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def table_markdown(table: dict[str, Any]) -> str:
    """The table for a paper: one row per study, then the comparisons and the note."""
    lines = [
        f"# Campaign {table['campaign']} ({table['state']})",
        "",
        "| property | encoding | state | mean | 95 % CI | n | best ratio | tied ratios | smoothed optimum (95 % CI) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table["studies"]:
        tied = "–" if row["ratio_low"] is None else _interval(row["ratio_low"], row["ratio_high"])
        optimum = "–"
        if row["optimum_ratio"] is not None:
            optimum = f"{_number(row['optimum_ratio'], 3)} {_interval(row['optimum_low'], row['optimum_high'])}"
        ratio = _number(row["ratio"], 3)
        mean, interval = _number(row["mean"]), _interval(row["ci_low"], row["ci_high"])
        lines.append(
            _row([row["property"], row["encoding"], row["state"], mean, interval, row["n"], ratio, tied, optimum])
        )
    if table["comparisons"]:
        lines += ["", "| property | comparison | difference of means | 95 % CI (Welch) | n |", "|---|---|---|---|---|"]
        for c in table["comparisons"]:
            ci = c["ci"]
            interval = "not estimable" if ci is None else _interval(*ci)
            n = "–" if c["n"] is None else f"{c['n'][0]} vs {c['n'][1]}"
            pair = f"{c['lead']} − {c['against']}"
            lines.append(_row([c["property"], pair, _number(c["difference"]), interval, n]))
    lines += ["", f"Note: {table['note']}.", ""]
    return "\n".join(lines)
