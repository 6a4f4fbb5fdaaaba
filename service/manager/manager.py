"""`StudyManager`: one of each part of the study manager, over one database and one job backend."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from sqlalchemy.orm import sessionmaker

from afpe.search.kept_models import artifact_root
from afpe.service.jobs.backend import JobBackend
from afpe.service.manager.importer import StudyImporter
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.queries import StudyQueries
from afpe.service.manager.reconciler import Reconciler
from afpe.service.manager.spec_admission import SpecAdmission
from afpe.service.settings import ServiceSettings


@dataclass
class StudyManager:
    catalog: SpecAdmission
    lifecycle: StudyLifecycle
    queries: StudyQueries
    importer: StudyImporter
    backend: JobBackend
    reconciler: Reconciler

    @classmethod
    def create(
        cls,
        settings: ServiceSettings,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        backend: JobBackend,
    ) -> StudyManager:
        catalog = SpecAdmission(settings)
        lifecycle = StudyLifecycle(sessions, storage, backend, catalog)
        return cls(
            catalog=catalog,
            lifecycle=lifecycle,
            queries=StudyQueries(
                sessions,
                storage,
                lifecycle,
                artifact_root(settings.storage, settings.artifact_dir),
                secrets=settings.secrets(),
                data_dir=settings.data_dir,
            ),
            importer=StudyImporter(sessions, storage),
            backend=backend,
            reconciler=Reconciler(lifecycle),
        )
