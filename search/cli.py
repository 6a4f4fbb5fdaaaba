"""`afpe run SPEC`, `afpe specs`, `afpe status [NAME]`, `afpe studies`, `afpe export NAME`: run a study, list the
shipped specs, look at a study (or list every study of the storage), export its trials."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

STORAGE_HELP = "Optuna RDB URL (default: $AFPE_STORAGE, else sqlite:///~/.afpe/afpe.db); password via PGPASSWORD"
NOTHING_FINISHED_EXIT_CODE = 1
RUN_EXIT_CODES = """exit codes:
  0  the study has an answer: at least one search trial finished (COMPLETE or PRUNED)
  1  no trial finished (every trial failed; `afpe export NAME` has each trial's error)
  2  refused: bad input or data (one line naming the field), another driver runs the study, the private Ray
     did not start, or a storage outage outlasted its budget"""


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a study spec (Ray Tune trials recorded in an Optuna study)",
        description="Run a study spec: Ray Tune trials recorded in an Optuna study, then its summary.",
        epilog=RUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("spec", help="a study spec file (YAML/JSON) or the name of a shipped spec, e.g. quickstart")
    add_run_arguments(run, "override a spec field by dotted path, e.g. --set n_trials=3 --set trainer.epochs=1")
    run.add_argument("--resume", action="store_true", help="continue the study until n_trials trials finished")
    run.add_argument(
        "--storage-outage",
        type=float,
        metavar="SECONDS",
        help="how long a lost database is waited for, reports buffered, before the run stops with exit code 2 "
        "(default: $AFPE_STORAGE_OUTAGE_S, else 300)",
    )
    run.set_defaults(func=_run)

    specs = subparsers.add_parser(
        "specs", help="list the shipped study specs (name, task, encoding, n_trials, description): afpe run NAME"
    )
    specs.add_argument("--json", action="store_true", help="print them as a JSON list")
    specs.set_defaults(func=_specs)

    status = subparsers.add_parser(
        "status", help="a study's progress, best scales and warnings; without a name: the list"
    )
    status.add_argument("name", nargs="?", help="study name (none: every study, as `afpe studies`)")
    status.add_argument("--storage", help=STORAGE_HELP)
    status.add_argument("--json", action="store_true", help="print the summary as JSON (best: mean, ci, n)")
    status.set_defaults(func=_status)

    studies = subparsers.add_parser(
        "studies", help="every study in the storage: name, origin (cli/service/import), state, finished, answer"
    )
    studies.add_argument("--storage", help=STORAGE_HELP)
    studies.add_argument("--json", action="store_true", help="print the list as JSON")
    studies.set_defaults(func=_studies)

    export = subparsers.add_parser(
        "export",
        help="a study's trials (csv, json: one row per trial), its best scales as MONAI code (monai), or its best "
        "checkpoint",
    )
    export.add_argument("name", help="study name")
    export.add_argument("--storage", help=STORAGE_HELP)
    export.add_argument(
        "--format",
        choices=("csv", "json", "monai"),
        default="csv",
        help="csv or json: the trials; monai: ready-to-paste MONAI code with the best configuration's scales",
    )
    export.add_argument("--out", type=Path, help="output file (default: stdout)")
    export.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="write the best configuration's checkpoint (model file) to FILE instead; the trials too only with "
        "--out (checkpoints are read from $AFPE_ARTIFACT_DIR, else beside a SQLite database, else ~/.afpe/artifacts)",
    )
    export.set_defaults(func=_export)


def add_run_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """`--storage`, `--ray-address` and the repeatable `--set KEY=VALUE` (into `overrides`) of a command that runs
    studies (`afpe run`, `afpe campaign run`)."""
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument("--ray-address", help="Ray cluster address (default: $RAY_ADDRESS, else a private local Ray)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def print_progress(progress) -> None:  # noqa: ANN001 - afpe.search.run_reports.Progress, imported lazily
    best = "none yet"
    if progress.best_value is not None:
        scales = ", ".join(f"{key}={value:.3g}" for key, value in progress.best_params.items())
        best = f"{progress.best_value:.4g} ({scales})"
    failed = f", {progress.failed} failed" if progress.failed else ""
    phase = "repeat " if progress.phase == "repeat" else ""
    state = progress.last_state.lower()
    print(
        f"[{phase}{progress.finished}/{progress.total}{failed}] trial {progress.last_number} {state}"
        f" | best {best} | elapsed {_duration(progress.elapsed_s)}, eta {_duration(progress.eta_s)}",
        flush=True,
    )


def print_warning(warning) -> None:  # noqa: ANN001 - afpe.search.run_reports.TrialWarning, imported lazily
    where = f" (log: {warning.log})" if warning.log else ""
    print(f"warning: trial {warning.number}: {warning.text}{where}", flush=True)


def warn_password_in_argv(url: str | None) -> None:
    """A password written in --storage is visible to every user of the machine (`ps`): say where it goes
    instead (libpq reads PGPASSWORD, PGPASSFILE or ~/.pgpass)."""
    from sqlalchemy.exc import ArgumentError

    from afpe.search.storage import split_password

    try:
        password = split_password(url)[1] if url else None
    except ArgumentError:  # not a URL: opening the storage names the problem
        return
    if password is not None:
        print(
            "warning: the password in --storage is visible in `ps`; set PGPASSWORD or use ~/.pgpass (PGPASSFILE)",
            file=sys.stderr,
            flush=True,
        )


def _run(args: argparse.Namespace) -> int:
    from afpe.search.data_check import check_data, checked_here
    from afpe.search.shipped_specs import spec_path
    from afpe.search.spec_loading import DATA_CONFINE_ENV, confine_data_root, load_spec

    spec = load_spec(spec_path(args.spec), args.overrides)  # bad input is refused before Ray and Optuna load
    if os.environ.get(DATA_CONFINE_ENV):  # a job of `afpe serve`: data_root must still lie in its data folder
        spec = confine_data_root(spec, os.environ[DATA_CONFINE_ENV])
    if checked_here(spec.resolved_data_root(), args.ray_address):  # so is bad data, within seconds
        check_data(spec.task, spec.task_options, spec.resolved_data_root())
    warn_password_in_argv(args.storage)

    import optuna

    from afpe.search.driver import run_study
    from afpe.search.outage import OUTAGE_EXIT_CODE, StorageOutage
    from afpe.search.priors import Priors, plan_line
    from afpe.search.storage import default_storage_url, public_url

    storage = public_url(args.storage or default_storage_url())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"study {spec.name}: {spec.n_trials} trials of {spec.task} / {spec.encoding}, "
        f"{spec.metric} ({spec.direction}); storage {storage}",
        flush=True,
    )
    space = spec.search_space()
    print(plan_line(spec.prior, Priors(space.priors, space.priors_note)), flush=True)
    try:
        summary = run_study(
            spec,
            storage=args.storage,
            ray_address=args.ray_address,
            resume=args.resume,
            on_progress=print_progress,
            on_warning=print_warning,
            on_storage=lambda line: print(line, flush=True),
            outage_budget_s=args.storage_outage,
        )
    except StorageOutage as outage:
        again = [args.spec, *(f"--set={override}" for override in args.overrides)]
        again += [] if args.storage is None else ["--storage", storage]
        command = f"afpe run {shlex.join(again)} --resume"
        print(f"{outage}. Once it is back, resume it: {command}", file=sys.stderr, flush=True)
        return OUTAGE_EXIT_CODE
    print("\n".join(summary.lines()))
    if summary.finished == 0:
        print(
            f"afpe: no trial of study {spec.name} finished; each trial's error: afpe export {spec.name}",
            file=sys.stderr,
            flush=True,
        )
        return NOTHING_FINISHED_EXIT_CODE
    return 0


def _specs(args: argparse.Namespace) -> int:
    import json

    from afpe.search.shipped_specs import shipped_spec_names, spec_path
    from afpe.search.spec_loading import load_spec

    rows = []
    for name in shipped_spec_names():
        spec = load_spec(spec_path(name))
        description = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
        rows.append(
            {
                "name": name,
                "task": spec.task,
                "encoding": spec.encoding,
                "n_trials": spec.n_trials,
                "description": description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    columns = ("name", "task", "encoding", "n_trials", "description")
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in columns[:-1]}
    for row in [dict(zip(columns, columns, strict=True)), *rows]:
        print("  ".join(f"{row[key]!s:<{widths[key]}}" for key in columns[:-1]) + f"  {row['description']}")
    return 0


def _open(args: argparse.Namespace):  # noqa: ANN202
    from afpe.search.storage import load_study, open_storage

    warn_password_in_argv(args.storage)
    return load_study(open_storage(args.storage), args.name)


def _studies(args: argparse.Namespace) -> int:
    import json

    from afpe.search.lease import StudyLeases
    from afpe.search.storage import create_engine, default_storage_url, open_storage
    from afpe.search.study_list import entry_json, list_studies, table_lines

    warn_password_in_argv(args.storage)
    storage = open_storage(args.storage)
    entries = list_studies(storage, StudyLeases(create_engine(args.storage or default_storage_url())))
    print(json.dumps([entry_json(e) for e in entries], indent=1) if args.json else "\n".join(table_lines(entries)))
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from afpe.search import summarize

    if args.name is None:
        return _studies(args)

    summary = summarize(_open(args))
    print(json.dumps(summary.to_json(), indent=1) if args.json else "\n".join(summary.lines()))
    return 0


def _export(args: argparse.Namespace) -> int:
    from afpe.search.export import export_text

    study = _open(args)
    if args.checkpoint is not None:
        from afpe.search.kept_models import artifact_root, export_best
        from afpe.search.storage import default_storage_url

        trial = export_best(study, artifact_root(args.storage or default_storage_url()), args.checkpoint)
        print(f"wrote {args.checkpoint} (trial {trial.number}, {study.study_name}'s best configuration)")
        if args.out is None:
            return 0
    if args.format == "monai":
        from afpe.search.monai_export import monai_text

        text = monai_text(study)
    else:
        text = export_text(study, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0
