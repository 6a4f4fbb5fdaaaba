"""Run a campaign from the command line: every study validated and its data checked before any starts, the
campaign recorded in the study database (`campaign_store`), then its studies in turn on one Ray (the given
cluster, else one private local Ray for the whole campaign). Each study is an ordinary `run_study`: one that
exists already is resumed, one that is done costs nothing, so running a campaign again resumes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from afpe.search.campaign import CampaignSpec, Member, expand
from afpe.search.data_check import check_data, checked_here
from afpe.search.summary import StudySummary


def run_campaign(
    campaign: CampaignSpec,
    overrides: list[str],
    storage: str | None = None,
    ray_address: str | None = None,
    *,
    on_study: Callable[[int, int, Member], None] | None = None,
    **study_callbacks: Any,
) -> list[tuple[Member, StudySummary]]:
    """Run (or resume) every study of `campaign`; returns each member with its summary, in campaign order.

    `on_study(i, count, member)` is called before study i (1-based) starts; `study_callbacks` (on_progress,
    on_warning, on_storage, outage_budget_s) go to each `run_study`. SpecError or DataRootError before anything
    runs; StorageOutage from the study that met it (running the campaign again resumes from there)."""
    from afpe.search.campaign_store import CampaignStore
    from afpe.search.driver import ray_session, run_study
    from afpe.search.storage import create_engine, default_storage_url, open_storage, study_names

    members = expand(campaign, overrides)
    for member in members:
        spec = member.spec
        if checked_here(spec.resolved_data_root(), ray_address):
            check_data(spec.task, spec.task_options, spec.resolved_data_root())
    CampaignStore(create_engine(storage or default_storage_url())).save(campaign, list(overrides))
    optuna_storage = open_storage(storage)
    existing = set(study_names(optuna_storage))
    results = []
    with ray_session(ray_address):
        for index, member in enumerate(members, start=1):
            if on_study is not None:
                on_study(index, len(members), member)
            summary = run_study(
                member.spec, storage=storage, ray_address=ray_address, resume=member.name in existing, **study_callbacks
            )
            results.append((member, summary))
    return results
