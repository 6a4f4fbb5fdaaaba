"""`afpe serve`: the REST API and dashboard (uvicorn), studies run as Ray Jobs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="start the REST API and dashboard (studies run as Ray Jobs)")
    parser.add_argument("--host", help="interface to listen on (default: $AFPE_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $AFPE_PORT, else 8000)")
    parser.add_argument("--storage", help="database URL of studies and trials (default: $AFPE_STORAGE, else SQLite)")
    parser.add_argument(
        "--ray-address", help="Ray Jobs address of a cluster (default: $AFPE_RAY_ADDRESS, else a private local head)"
    )
    parser.add_argument(
        "--ray-host",
        help="address other hosts reach this host at, for Ray workers joining the private head (`afpe cluster "
        "worker-command`); 0.0.0.0: this host's outward address (default: $AFPE_RAY_HOST, else loopback only)",
    )
    parser.add_argument(
        "--ray-port", type=int, help="with --ray-host: the head's GCS port, first of its 256 (default: 20000)"
    )
    parser.add_argument(
        "--max-running-studies",
        type=int,
        help="studies whose jobs run at once, the others wait queued (default: $AFPE_MAX_RUNNING_STUDIES, else one "
        "per CPU of the private Ray head; no bound with --ray-address)",
    )
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from afpe.search.cli import warn_password_in_argv
    from afpe.service.app import create_app
    from afpe.service.settings import ServiceSettings

    warn_password_in_argv(args.storage)
    flags = {
        key: getattr(args, key)
        for key in (
            "host",
            "port",
            "storage",
            "ray_address",
            "ray_host",
            "ray_port",
            "max_running_studies",
        )
    }
    try:
        settings = ServiceSettings(**{key: value for key, value in flags.items() if value is not None})
    except ValidationError as error:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None
    app = create_app(settings)
    settings = app.state.settings
    if settings.generated_token:
        print(f"API token (no AFPE_API_TOKEN set; this run only, loopback only): {settings.api_token}", flush=True)
    if settings.ray_host is not None:  # up before the service answers, so workers can join at once
        head = app.state.backend.head_for_workers()
        print(f"Ray head for workers of other hosts: {head} (see `afpe cluster worker-command`)", flush=True)
    print(f"AFPE Sweep dashboard: http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
