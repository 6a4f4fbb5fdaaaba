"""Path and query parameters every route checks alike, so that what a database or the file system cannot take
(a NUL byte, a number beyond PostgreSQL's integer) is a 422 before any read, never a 500: study names are
slugs, trial numbers fit an `integer` column."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from afpe.search.spec import SLUG_PATTERN

MAX_TRIAL_NUMBER = 2**31 - 1  # PostgreSQL's integer, Optuna's trials.number

StudyName = Annotated[str, Path(pattern=SLUG_PATTERN, description="a study's name (a slug)")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_TRIAL_NUMBER, description="a trial's number")]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]  # an item of a `names` query list
