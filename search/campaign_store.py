"""Campaigns kept in the study database (table `afpe_campaigns`), so a campaign run from the command line is
seen by `afpe campaign status` and the service alike: its spec as given and the `--set` overrides applied to
its base. Its studies are ordinary Optuna studies named by `campaign.expand`; nothing else is stored.

A name belongs to one campaign: saving another spec under it is refused (the same spec with its mappings' keys
in another order is the same campaign, except `vary`, whose order names the studies). The spec is stored in its
given order, since `vary`'s order decides the member names. Reads never write: listing a database without the
table answers no campaign."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from afpe.search.campaign import CampaignSpec, validate_campaign
from afpe.search.spec import SpecError
from afpe.search.storage import create_tables

_metadata = sa.MetaData()
_campaigns = sa.Table(
    "afpe_campaigns",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),  # the campaign as JSON
    sa.Column("overrides", sa.Text, nullable=False),  # a JSON list of `key=value`
    sa.Column("created_at", sa.DateTime, nullable=False),
)


class CampaignStore:
    """The campaigns of one study database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def save(self, campaign: CampaignSpec, overrides: list[str]) -> bool:
        """Record `campaign` (True), or find it recorded with the same spec and overrides (False). SpecError
        naming `name` when the name holds another campaign."""
        create_tables(_metadata, self.engine)
        spec = json.dumps(campaign.model_dump(mode="json"))
        given = json.dumps(list(overrides))
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(_campaigns).where(_campaigns.c.name == campaign.name)).first()
            if row is None:
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                connection.execute(
                    _campaigns.insert().values(name=campaign.name, spec=spec, overrides=given, created_at=now)
                )
                return True
        if _identity(row.spec) != _identity(spec) or row.overrides != given:
            raise SpecError(
                f"name: campaign {campaign.name!r} exists with another spec or other --set overrides; "
                "choose another name, or run it as it was"
            )
        return False

    def get(self, name: str) -> tuple[CampaignSpec, list[str]]:
        """The campaign `name` and its overrides. ValueError naming the known campaigns when there is none."""
        row = None
        if sa.inspect(self.engine).has_table(_campaigns.name):
            with self.engine.connect() as connection:
                row = connection.execute(sa.select(_campaigns).where(_campaigns.c.name == name)).first()
        if row is None:
            known = ", ".join(self.names()) or "none"
            raise ValueError(f"campaign {name!r} not found in the storage (campaigns there: {known})")
        return validate_campaign(json.loads(row.spec), source=f"campaign {name}"), json.loads(row.overrides)

    def names(self) -> list[str]:
        """Every campaign's name, oldest first."""
        if not sa.inspect(self.engine).has_table(_campaigns.name):
            return []
        with self.engine.connect() as connection:
            query = sa.select(_campaigns.c.name).order_by(_campaigns.c.created_at, _campaigns.c.name)
            return list(connection.execute(query).scalars())


def _identity(spec: str) -> tuple[str, list[str]]:
    """What makes two stored campaign specs the same campaign: the content, and the order of `vary`'s fields."""
    data = json.loads(spec)
    return json.dumps(data, sort_keys=True), list(data.get("vary", {}))
