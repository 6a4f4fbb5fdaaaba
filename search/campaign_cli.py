"""`afpe campaign run FILE`, `afpe campaign status NAME`, `afpe campaign list`: a campaign (`campaign.py`) run
and read from the command line, on the same study database the service reads."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from afpe.search.cli import NOTHING_FINISHED_EXIT_CODE, STORAGE_HELP, add_run_arguments, print_progress, print_warning

FORMATS = ("markdown", "json", "csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    campaign = subparsers.add_parser(
        "campaign",
        help="a campaign: a base spec × one or two varied fields, run and answered as one table",
        description="A campaign expands a base study spec over one or two varied fields (e.g. encoding × "
        "task_options.anisotropy) into named studies, runs them, and answers with one table.",
    )
    commands = campaign.add_subparsers(title="campaign commands", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a campaign file (running it again resumes it)")
    run.add_argument(
        "campaign",
        help="a campaign file (YAML/JSON: name, base, vary; see the README, Campaigns) or a shipped campaign's name "
        "(afpe campaign shipped)",
    )
    add_run_arguments(run, "override a field of the base study spec, e.g. --set n_trials=3 --set trainer.epochs=1")
    run.set_defaults(func=_run)

    status = commands.add_parser("status", help="a campaign's studies, their states and its result table")
    status.add_argument("name", help="campaign name")
    status.add_argument("--storage", help=STORAGE_HELP)
    status.add_argument("--format", choices=FORMATS, default="markdown", help="markdown (default), json or csv")
    status.set_defaults(func=_status)

    shipped = commands.add_parser("shipped", help="the shipped campaigns (run one by name: afpe campaign run NAME)")
    shipped.set_defaults(func=_shipped)

    listing = commands.add_parser("list", help="every campaign of the storage with its state")
    listing.add_argument("--storage", help=STORAGE_HELP)
    listing.set_defaults(func=_list)


def _run(args: argparse.Namespace) -> int:
    from afpe.search.campaign import expand, load_campaign, planned_trials

    campaign = load_campaign(args.campaign)
    members = expand(campaign, args.overrides)  # the whole campaign is refused before anything starts

    import optuna

    from afpe.search.campaign_run import run_campaign
    from afpe.search.outage import OUTAGE_EXIT_CODE, StorageOutage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    total = sum(planned_trials(m.spec) for m in members)
    print(f"campaign {campaign.name}: {len(members)} studies, {total} trials in all", flush=True)

    def announce(index: int, count: int, member) -> None:  # noqa: ANN001 - campaign.Member
        values = ", ".join(f"{key}={json.dumps(value)}" for key, value in member.values.items())
        print(f"[study {index}/{count}] {member.name} ({values}): {member.spec.n_trials} trials", flush=True)

    try:
        results = run_campaign(
            campaign,
            args.overrides,
            args.storage,
            args.ray_address,
            on_study=announce,
            on_progress=print_progress,
            on_warning=print_warning,
            on_storage=lambda line: print(line, flush=True),
        )
    except StorageOutage as outage:
        again = [args.campaign, *(f"--set={override}" for override in args.overrides)]
        again += [] if args.storage is None else ["--storage", args.storage]
        print(f"{outage}. Once it is back, run it again: afpe campaign run {shlex.join(again)}", file=sys.stderr)
        return OUTAGE_EXIT_CODE
    print(_table(campaign.name, args.storage, "markdown"))
    unanswered = [member.name for member, summary in results if summary.finished == 0]
    if unanswered:
        print(
            f"afpe: no trial finished in {', '.join(unanswered)}; each trial's error: afpe export NAME", file=sys.stderr
        )
        return NOTHING_FINISHED_EXIT_CODE
    return 0


def _table(name: str, storage: str | None, form: str) -> str:
    from afpe.search.campaign import expand
    from afpe.search.campaign_result import campaign_table, member_results, table_csv, table_markdown
    from afpe.search.campaign_store import CampaignStore
    from afpe.search.lease import StudyLeases
    from afpe.search.storage import create_engine, default_storage_url, open_storage

    engine = create_engine(storage or default_storage_url())
    campaign, overrides = CampaignStore(engine).get(name)
    results = member_results(expand(campaign, overrides), open_storage(storage), StudyLeases(engine))
    table = campaign_table(campaign, results)
    if form == "json":
        return json.dumps(table, indent=1)
    return table_csv(table) if form == "csv" else table_markdown(table)


def _status(args: argparse.Namespace) -> int:
    sys.stdout.write(_table(args.name, args.storage, args.format).rstrip("\n") + "\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    from afpe.search.campaign_store import CampaignStore
    from afpe.search.storage import create_engine, default_storage_url

    names = CampaignStore(create_engine(args.storage or default_storage_url())).names()
    print("\n".join(names) if names else "no campaign in this storage")
    return 0


def _shipped(args: argparse.Namespace) -> int:
    from afpe.search.campaign import load_campaign
    from afpe.search.shipped_specs import shipped_campaign_names

    for name in shipped_campaign_names():
        print(f"{name}: {' '.join(load_campaign(name).description.split())}")
    return 0
