"""Dependencies of the routes: each route takes the few parts of the study manager it uses, built once by
`afpe.service.app.create_app` and kept on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from afpe.service.manager.campaigns import Campaigns
from afpe.service.manager.cross_study_queries import CrossStudyQueries
from afpe.service.manager.downloads import StudyDownloads
from afpe.service.manager.importer import StudyImporter
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.plot_queries import PlotQueries
from afpe.service.manager.spec_admission import SpecAdmission
from afpe.service.manager.status_queries import StatusQueries
from afpe.service.manager.trial_queries import TrialQueries


def get_admission(request: Request) -> SpecAdmission:
    return request.app.state.admission


def get_lifecycle(request: Request) -> StudyLifecycle:
    return request.app.state.lifecycle


def get_importer(request: Request) -> StudyImporter:
    return request.app.state.importer


def get_statuses(request: Request) -> StatusQueries:
    return request.app.state.statuses


def get_trials(request: Request) -> TrialQueries:
    return request.app.state.trials


def get_downloads(request: Request) -> StudyDownloads:
    return request.app.state.downloads


def get_plots(request: Request) -> PlotQueries:
    return request.app.state.plots


def get_cross_studies(request: Request) -> CrossStudyQueries:
    return request.app.state.cross_studies


def get_campaigns(request: Request) -> Campaigns:
    return request.app.state.campaigns


Admission = Annotated[SpecAdmission, Depends(get_admission)]
Lifecycle = Annotated[StudyLifecycle, Depends(get_lifecycle)]
Importer = Annotated[StudyImporter, Depends(get_importer)]
Statuses = Annotated[StatusQueries, Depends(get_statuses)]
Trials = Annotated[TrialQueries, Depends(get_trials)]
Downloads = Annotated[StudyDownloads, Depends(get_downloads)]
Plots = Annotated[PlotQueries, Depends(get_plots)]
CrossStudies = Annotated[CrossStudyQueries, Depends(get_cross_studies)]
CampaignsDep = Annotated[Campaigns, Depends(get_campaigns)]
