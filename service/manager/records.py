"""The service's own table `afpe_studies` (same database as Optuna; Optuna already owns a table `studies`).

One row per study: its spec, where it came from, the Ray job of its latest attempt, its `StudyState`,
timestamps and a `note` (why the current attempt was resubmitted). The Optuna study of the same name holds
the trials. Reads and writes of the table ride out a database restart of up to RETRY_S seconds
(`afpe.search.outage.retry`; the engine's `pool_pre_ping` replaces connections the restart dropped).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from afpe.search.outage import retry
from afpe.search.storage import create_engine
from afpe.service.errors import NotFound

RETRY_S = 10.0


class StudyState(StrEnum):
    """A study's state in the service (and the state of its current job): queued and running are active."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (StudyState.QUEUED, StudyState.RUNNING)


ACTIVE_STATES = (StudyState.QUEUED, StudyState.RUNNING)


class StudySource(StrEnum):
    """Where a study's record came from: started over REST (it has jobs), imported from a CSV (finished, no jobs),
    or made by `afpe run` (`cli`): a study with no record here (read from the Optuna storage), or one the service
    adopted with a REST resume (it has jobs from then on)."""

    REST = "rest"
    IMPORT = "import"
    CLI = "cli"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


def _text_enum(kind: type[StrEnum], length: int) -> sa.Enum:
    """A StrEnum column stored as its plain value in a VARCHAR (the same column type as before the enum)."""
    return sa.Enum(kind, native_enum=False, create_constraint=False, length=length, values_callable=_values)


def _values(kind: type[StrEnum]) -> list[str]:
    return [member.value for member in kind]


class StudyRecord(Base):
    __tablename__ = "afpe_studies"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    source: Mapped[StudySource] = mapped_column(_text_enum(StudySource, 16), default=StudySource.REST)
    state: Mapped[StudyState] = mapped_column(_text_enum(StudyState, 16), default=StudyState.QUEUED, index=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    resume: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(sa.Text, nullable=True)

    @property
    def managed(self) -> bool:
        """Whether the service runs this study's jobs (a REST study, or a CLI study it adopted)."""
        return self.source in (StudySource.REST, StudySource.CLI) and self.attempt > 0


class DerivedValue(Base):
    """What reads derived from a study's trials at one `version` (`derived_store.DerivedStore`): JSON text."""

    __tablename__ = "afpe_derived_values"

    study: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[str] = mapped_column(sa.Text)


def open_records(url: str) -> sessionmaker:
    """A session factory on the service tables of `url` (created if missing, nullable columns added since
    created), on an engine built by `afpe.search.storage.create_engine` (no password in its URL)."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _add_missing_columns(engine: sa.Engine) -> None:
    """`create_all` makes missing tables, not missing columns: add the (nullable) columns of StudyRecord
    that a table made by an older version lacks."""
    table = StudyRecord.__table__
    present = {column["name"] for column in sa.inspect(engine).get_columns(table.name)}
    with engine.begin() as connection:
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(engine.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


def get_record(sessions: sessionmaker, name: str) -> StudyRecord:
    """The record of study `name`; NotFound when the service has none. StorageOutage when the database stays
    unreachable for RETRY_S."""

    def read() -> StudyRecord | None:
        with sessions() as session:
            return session.get(StudyRecord, name)

    record = retry(read, RETRY_S)
    if record is None:
        raise NotFound(f"name: no study {name!r}")
    return record


def update_record(sessions: sessionmaker, name: str, **changes: Any) -> StudyRecord:
    """Store `changes` on the record of study `name` in one transaction (run again after a transient error);
    the updated record. StorageOutage when the database stays unreachable for RETRY_S."""

    def write() -> StudyRecord:
        with sessions.begin() as session:
            record = session.get(StudyRecord, name)
            for key, value in changes.items():
                setattr(record, key, value)
        return record

    return retry(write, RETRY_S)


def compare_and_update(
    sessions: sessionmaker, name: str, expected: dict[str, Any], **changes: Any
) -> StudyRecord | None:
    """Store `changes` on the record of study `name` only while its columns still hold `expected`: one
    `UPDATE ... WHERE`, atomic across threads and service processes. The updated record, or None when another
    writer changed it first."""

    def write() -> int:
        with sessions.begin() as session:
            matches = [getattr(StudyRecord, key) == value for key, value in expected.items()]
            update = sa.update(StudyRecord).where(StudyRecord.name == name, *matches).values(**changes)
            return session.execute(update).rowcount

    return get_record(sessions, name) if retry(write, RETRY_S) == 1 else None
