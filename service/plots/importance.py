"""How much each scale matters to the metric: Optuna's PED-ANOVA importances over the COMPLETE search trials. The
plot names its method and the trials it counted, since other tools differ in both (optuna-dashboard: fANOVA over
every COMPLETE trial, repeats included) and so in their numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials, search_trials
from afpe.search.spec import SearchSpace
from afpe.service.plots.kinds import register_plot


@dataclass(frozen=True)
class ImportanceData:
    """How much each scale matters to the metric: Optuna's PED-ANOVA importances (normalised to sum 1) over
    the COMPLETE search trials, least important first."""

    metric: str
    params: list[str]
    importances: list[float]
    n: int  # COMPLETE search trials counted (repeats are not search trials)
    method: str = "PED-ANOVA"  # the evaluator given to `optuna.importance.get_param_importances`


def importance_data(trials: Sequence[FrozenTrial], space: SearchSpace) -> ImportanceData:
    """`optuna.importance.get_param_importances` with the PED-ANOVA evaluator (no model fitted, so it stays
    fast at 50,000 trials where fANOVA fits 64 trees) on a throw-away in-memory study holding the study's
    COMPLETE search trials. ValueError with no axis or fewer than 2 such trials."""
    done = [t for t in complete_trials(search_trials(trials)) if all(a.param in t.params for a in space.axes)]
    if not space.axes or len(done) < 2:
        raise ValueError("importance needs a searched axis and at least 2 complete trials")
    # through the public storage API: `study.add_trials` validates each trial again (twice as slow)
    storage = optuna.storages.InMemoryStorage()
    study_id = storage.create_new_study([optuna.study.StudyDirection[space.direction.upper()]], "importance")
    for trial in done:
        storage.create_new_trial(study_id, template_trial=trial)
    study = optuna.load_study(study_name="importance", storage=storage)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    importances = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=[a.param for a in space.axes]
    )
    ordered = sorted(importances.items(), key=lambda item: item[1])
    return ImportanceData(space.metric, [k for k, _ in ordered], [float(v) for _, v in ordered], len(done))


@register_plot("importance", importance_data)
def importance_figure(d: ImportanceData) -> go.Figure:
    fig = go.Figure(go.Bar(x=d.importances, y=d.params, orientation="h", marker_color="steelblue"))
    fig.update_layout(
        title=f"Scale importance for {d.metric}: {d.method} over {d.n} COMPLETE search trials"
        f"<br><sup>optuna.importance.get_param_importances, evaluator {d.method} (its defaults); repeats not "
        "counted</sup>",
        xaxis_title="importance (sums to 1)",
        yaxis_title="scale",
    )
    return fig
