"""Settings of the service: `afpe serve` flags override `AFPE_*` environment variables override defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from afpe.search.shipped_specs import shipped_specs_dir
from afpe.search.storage import default_storage_url, split_password
from afpe.service.cluster.ports import PORT_BLOCK
from afpe.service.cluster.remote_workers import advertised_ip

MIN_TOKEN_LENGTH = 32
RAY_HEAD_PORT = 20000  # a head for other hosts' workers: ports 20000-20255 (below Linux's ephemeral ports)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    """Where the service listens, what it reads and writes, and the bounds it puts on a submitted spec."""

    model_config = SettingsConfigDict(env_prefix="AFPE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    storage: str = Field(default_factory=default_storage_url, description="Optuna + service database URL")
    ray_address: str | None = Field(None, description="Ray dashboard/job address; None = a private local head")
    api_token: str | None = Field(None, description="Bearer token of mutating endpoints; None = generated")
    data_dir: Path = Field(Path("~/.afpe/data"), description="every data_root must lie under this folder")
    specs_dir: Path = Field(default_factory=shipped_specs_dir, description="the study specs offered (*.yaml)")
    work_dir: Path = Field(Path("~/.afpe/service"), description="spec files handed to jobs")
    artifact_dir: Path | None = Field(
        None,
        description="the studies' kept checkpoints, shared with the jobs and their workers (None: beside a SQLite "
        "database, else ~/.afpe/artifacts)",
    )
    ray_num_cpus: int | None = Field(
        None, ge=0, description="CPUs of the private Ray head (None = all; 0 = trials run on other hosts' workers only)"
    )
    max_running_studies: int | None = Field(
        None,
        ge=1,
        description="studies whose jobs run at once; the others wait queued, oldest first (None: the private Ray "
        "head's CPUs, no bound on a cluster at ray_address or a head with ray_num_cpus 0)",
    )
    ray_host: str | None = Field(
        None,
        description="address other hosts reach the private Ray head at, so their Ray workers can join it "
        "(`afpe cluster worker-command`); 0.0.0.0 = this host's outward address; None = loopback only",
    )
    ray_port: int = Field(
        RAY_HEAD_PORT,
        ge=1024,
        le=65536 - PORT_BLOCK,
        description=f"with ray_host: the head's GCS port, first of its block of {PORT_BLOCK} ports",
    )
    max_trials: int = Field(1000, ge=1, le=10_000, description="upper bound on a spec's n_trials")
    max_epochs: int = Field(1000, ge=1, description="upper bound on trainer.epochs")
    max_trial_cpus: float = Field(64.0, gt=0, description="upper bound on resources.cpus")
    max_trial_gpus: float = Field(1.0, ge=0, le=1, description="upper bound on resources.gpu (one device per trial)")
    min_trial_cpus: float = Field(0.25, gt=0, description="lower bound on resources.cpus")
    max_model_params: int = Field(500_000_000, ge=1, description="upper bound on the ViT's parameter count")
    max_tokens: int = Field(16_384, ge=1, description="upper bound on tokens per sample (patch grid + CLS)")
    max_activation_bytes: int = Field(
        64 * 2**30, ge=1, description="upper bound on a batch's activations (batch × tokens × dim × depth, float32)"
    )
    max_generated_bytes: int = Field(
        16 * 2**30, ge=1, description="upper bound on the data a synthetic task generates (float32 bytes)"
    )
    max_body_bytes: int = Field(2**20, ge=1, description="largest request body (413 above), uploads excepted")
    max_upload_bytes: int = Field(20 * 2**20, ge=1, description="largest multipart upload (CSV import; 413 above)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host headers served (JSON list); loopback names and the bind host are always allowed",
    )
    generated_token: bool = Field(False, exclude=True)

    def resolved(self) -> ServiceSettings:
        """Paths expanded; a generated token when none is configured, which is refused off loopback; the
        trusted hosts completed. ValueError for a ray_host that does not resolve or stands beside ray_address, a
        token shorter than MIN_TOKEN_LENGTH characters, or one with white space at either end (HTTP strips it from
        the header, so nothing would authenticate)."""
        token = self.api_token
        if token is not None and token != token.strip():
            raise ValueError(
                "api_token: AFPE_API_TOKEN starts or ends with white space (or is nothing but), which no "
                "Authorization header can carry"
            )
        if token and len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"api_token: AFPE_API_TOKEN has {len(token)} characters, at least {MIN_TOKEN_LENGTH} are needed "
                "(e.g. `openssl rand -hex 32`)"
            )
        if self.ray_host is not None and self.ray_address is not None:
            raise ValueError(
                "ray_host: only a private Ray head (no ray_address) takes workers through the service; "
                f"workers join the cluster at {self.ray_address} through its own head"
            )
        if self.ray_host is not None:
            advertised_ip(self.ray_host)  # ValueError naming ray_host when it does not resolve
        if not token:
            if not is_loopback(self.host):
                raise ValueError(
                    f"host: refusing to listen on non-loopback {self.host!r} without AFPE_API_TOKEN; set a token"
                )
            token = secrets.token_urlsafe(24)
        return self.model_copy(
            update={
                "api_token": token,
                "generated_token": not self.api_token,
                "data_dir": Path(os.path.expanduser(self.data_dir)).resolve(),
                "specs_dir": Path(os.path.expanduser(self.specs_dir)).resolve(),
                "work_dir": Path(os.path.expanduser(self.work_dir)).resolve(),
                "allowed_hosts": self.trusted_hosts(),
            }
        )

    def running_cap(self) -> int | None:
        """How many studies' jobs run at once (`max_running_studies`, or its default: every driver of a private
        head runs on this host beside its trials, so one study per CPU of the head; None = no bound)."""
        if self.max_running_studies is not None:
            return self.max_running_studies
        if self.ray_address is not None or self.ray_num_cpus == 0:
            return None
        return self.ray_num_cpus or os.cpu_count() or 1

    def trusted_hosts(self) -> list[str]:
        """The Host header names served: the configured ones, the loopback names and the bind host (unless it
        is a wildcard address, which names no host)."""
        hosts = [*self.allowed_hosts, *LOOPBACK_NAMES]
        if self.host not in ("0.0.0.0", "::", ""):
            hosts.append(f"[{self.host}]" if ":" in self.host else self.host)
        return list(dict.fromkeys(hosts))

    def secrets(self) -> list[str]:
        """Values never to show: the API token, the database password, the Ray auth token."""
        values = [self.api_token, split_password(self.storage)[1], os.environ.get("RAY_AUTH_TOKEN")]
        return [value for value in values if value]
