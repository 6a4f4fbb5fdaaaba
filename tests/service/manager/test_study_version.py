"""`study_reads.study_version`, the key of the kept figures and summaries and the status's `version`: the same for
the same trials, new whenever a trial is added, reports an epoch or ends."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution

from afpe.search.storage import open_storage
from afpe.search.testing import add_trials, rows_cols_axes
from afpe.search.trial_reads import trial_count_and_open
from afpe.service.manager.study_reads import study_version, version_of

SPEC = {"name": "v", "task": "synthetic2d", "axes": rows_cols_axes(0.1, 4.0), "metric": "auroc"}


def test_the_version_changes_exactly_when_the_trials_do() -> None:
    study = optuna.create_study(direction="maximize")
    add_trials(study, SPEC, 5)
    seen = [study_version(SPEC, study.trials)]
    assert study_version(SPEC, study.trials) == seen[0]
    running = study.ask({"s_rows": FloatDistribution(0.1, 4.0, log=True)})
    seen.append(study_version(SPEC, study.trials))
    running.report(0.5, 1)
    seen.append(study_version(SPEC, study.trials))
    study.tell(running, 0.7)
    seen.append(study_version(SPEC, study.trials))
    add_trials(study, SPEC, 1, seed=3)
    seen.append(study_version(SPEC, study.trials))
    seen.append(study_version({**SPEC, "n_trials": 99}, study.trials))
    assert len(set(seen)) == len(seen), seen
    assert study_version(SPEC, study.trials) == seen[-2]


def test_the_version_from_two_small_queries_is_the_version_of_the_trials(postgres_url: str) -> None:
    """`StudyReads.version`'s reads (`trial_reads.trial_count_and_open`) give `study_version` without reading a
    whole trial, through every change the version follows."""
    storage = open_storage(postgres_url)
    study = optuna.create_study(study_name="v", storage=storage, direction="maximize")
    add_trials(study, SPEC, 5)

    def agree() -> str:
        version = study_version(SPEC, study.trials)
        assert version_of(SPEC, *trial_count_and_open(storage, "v")) == version
        return version

    seen = [agree()]
    running = study.ask({"s_rows": FloatDistribution(0.1, 4.0, log=True)})
    seen.append(agree())
    running.report(0.5, 1)
    running.report(0.6, 2)
    seen.append(agree())
    study.tell(running, 0.7)
    seen.append(agree())
    assert len(set(seen)) == len(seen), seen
