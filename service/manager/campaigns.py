"""Campaigns over REST: a campaign (`afpe.search.campaign`) admitted whole, then each of its studies created as an
ordinary service study (queued and run by the service's jobs, side by side as the cluster's resources allow);
its table read back with each study's state as the service knows it; cancel and resume of every study at once.

The campaign itself lives in the study database (`campaign_store`), so a campaign that `afpe campaign run` made
on the same storage is listed and read here too (its studies are then `cli` studies: a resume adopts them)."""

from __future__ import annotations

from typing import Any

import optuna
from sqlalchemy.engine import Engine

from afpe.search.campaign import CampaignSpec, Member, expand, load_campaign, validate_campaign
from afpe.search.campaign_result import PENDING, campaign_table, member_results
from afpe.search.campaign_store import CampaignStore
from afpe.search.lease import StudyLeases
from afpe.search.spec import SpecError
from afpe.service.errors import Conflict, InvalidInput, NotFound
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.records import StudyState, get_record
from afpe.service.manager.spec_admission import SLUG, SpecAdmission


class Campaigns:
    def __init__(
        self,
        lifecycle: StudyLifecycle,
        admission: SpecAdmission,
        engine: Engine,
        storage: optuna.storages.BaseStorage,
    ):
        """`engine`: the study database (campaigns and leases), `storage` the Optuna storage on it."""
        self.lifecycle = lifecycle
        self.admission = admission
        self.store = CampaignStore(engine)
        self.leases = StudyLeases(engine)
        self.storage = storage

    def shipped(self) -> list[dict[str, str]]:
        """The shipped campaigns (`<specs folder>/campaigns/*.yaml`): name and description, or the load error."""
        items = []
        for path in sorted((self.admission.settings.specs_dir / "campaigns").glob("*.yaml")):
            try:
                items.append({"name": path.stem, "description": load_campaign(path).description})
            except (SpecError, FileNotFoundError) as error:
                items.append({"name": path.stem, "error": str(error)})
        return items

    def shipped_campaign(self, name: str) -> CampaignSpec:
        """The shipped campaign `name` (a slug, never a path), to POST as it is or changed; NotFound lists them."""
        path = self.admission.settings.specs_dir / "campaigns" / f"{name}.yaml"
        if not SLUG.fullmatch(name) or not path.is_file():
            known = ", ".join(item["name"] for item in self.shipped()) or "none"
            raise NotFound(f"campaign spec: no shipped campaign {name!r} (shipped: {known})")
        try:
            return load_campaign(path)
        except SpecError as error:
            raise InvalidInput(str(error)) from None

    def recorded_state(self, name: str) -> str | None:
        """The service's state of study `name` (None for a study it has no record of: not created, or `afpe run`'s)."""
        try:
            return str(get_record(self.lifecycle.jobs.sessions, name).state)
        except NotFound:
            return None

    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(table, created). Every study is validated within the service's bounds and its data checked before
        the campaign is recorded and its studies created. InvalidInput naming the study and field, Conflict for
        a name that holds another campaign or a study another spec owns."""
        overrides = list(body.pop("overrides", None) or [])
        try:
            campaign = validate_campaign(body, source="campaign")
            members = expand(campaign, overrides)
        except SpecError as error:
            raise InvalidInput(str(error)) from None
        specs = []
        for member in members:
            try:
                spec = self.admission.validate(member.spec.model_dump(mode="json"))
            except InvalidInput as error:
                raise InvalidInput(f"study {member.name}: {error}") from None
            self.admission.check_data(spec)
            specs.append(spec)
        try:
            created = self.store.save(campaign, overrides)
        except SpecError as error:
            raise Conflict(str(error)) from None
        for spec in specs:
            self.lifecycle.create(spec.model_dump(mode="json"))
        return self.table(campaign.name), created

    def names(self) -> list[str]:
        return self.store.names()

    def table(self, name: str) -> dict[str, Any]:
        """The campaign's result table (`campaign_result.campaign_table`), each study's state the service's."""
        campaign, members = self._members(name)
        results = member_results(members, self.storage, self.leases)
        for result in results:
            result.state = self.recorded_state(result.member.name) or result.state
        return campaign_table(campaign, results)

    def cancel(self, name: str) -> dict[str, Any]:
        """Cancel every study of the campaign that is queued or running; the others are left as they are."""
        _, members = self._members(name)
        for member in members:
            if self.recorded_state(member.name) in (StudyState.QUEUED, StudyState.RUNNING):
                try:
                    self.lifecycle.cancel(member.name)
                except Conflict:  # it ended meanwhile, or another driver runs it
                    pass
        return self.table(name)

    def resume(self, name: str) -> dict[str, Any]:
        """Resume every study of the campaign that failed or was cancelled (adopting those `afpe campaign run`
        made and left unfinished), and create any not yet created; succeeded ones are left as they are."""
        _, members = self._members(name)
        for result in member_results(members, self.storage, self.leases):
            recorded = self.recorded_state(result.member.name)
            if recorded is None and result.state == PENDING:
                self.lifecycle.create(result.member.spec.model_dump(mode="json"))
            elif recorded in (StudyState.FAILED, StudyState.CANCELLED) or (
                recorded is None and result.state == "failed"
            ):
                self.lifecycle.resume(result.member.name)  # a study `afpe run` left unfinished is adopted
        return self.table(name)

    def _members(self, name: str) -> tuple[CampaignSpec, list[Member]]:
        try:
            campaign, overrides = self.store.get(name)
        except ValueError as error:
            raise NotFound(str(error)) from None
        return campaign, expand(campaign, overrides)
