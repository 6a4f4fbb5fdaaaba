"""Dependencies of the routes: the study manager of the app (see `afpe.service.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from afpe.service.manager.manager import StudyManager


def get_manager(request: Request) -> StudyManager:
    return request.app.state.manager


Manager = Annotated[StudyManager, Depends(get_manager)]
