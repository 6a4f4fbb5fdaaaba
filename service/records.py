"""The service's own table `afpe_studies` (same database as Optuna; Optuna already owns a table `studies`).

One row per study: its spec, where it came from, the Ray job of its latest attempt, its state and timestamps.
The Optuna study of the same name holds the trials.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from afpe.search.storage import normalize_url, split_password

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class StudyRecord(Base):
    __tablename__ = "afpe_studies"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    source: Mapped[str] = mapped_column(sa.String(16), default="rest")  # rest | import
    state: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    resume: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


def open_records(url: str) -> sessionmaker:
    """A session factory on the service table of `url` (created if missing); the password, if the URL has
    one, goes to the driver's connect_args, never into a URL that is logged or handed on."""
    safe_url, password = split_password(normalize_url(url))
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if password is not None:
        kwargs["connect_args"] = {"password": password}
    engine = sa.create_engine(safe_url, **kwargs)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
