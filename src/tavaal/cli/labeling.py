"""The labeling commands: ``tavaal query`` (which images to label next), ``tavaal serve`` (the
live Label Studio ML backend) and ``tavaal labels import-labelstudio``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from tavaal.cli.options import (
    LABELING_PRESET_HELP,
    METHOD_HELP,
    _number,
    add_config_options,
    add_labelstudio_options,
    bars,
    resolve_config,
)
from tavaal.config import load_yaml_overrides
from tavaal.data.folder import image_extensions, list_images
from tavaal.errors import TavaalError
from tavaal.labeling.labels import QUERY_BUDGET, query, write_suggestions
from tavaal.labeling.labelstudio import (
    API_KEY_ENV,
    LabelStudioLink,
    export_tasks,
    merge_labels,
    push_tasks,
    write_tasks,
)
from tavaal.learner import QueryResult
from tavaal.paths import check_output
from tavaal.presets import default_preset
from tavaal.strategies import get_strategy


def check_query_out(args: argparse.Namespace) -> None:
    """Refuse, before any training, an --out that would replace the labels or the config, land in
    the pool folder, or that cannot be written (see ``tavaal.paths``)."""
    check_output(
        args.out,
        "--out",
        files={"--labels file": args.labels, "--config file": args.config},
        folders={"pool folder": args.pool},
    )


def labeling_preset(args: argparse.Namespace) -> str:
    """query's and serve's preset: the one given, else quick on a CPU (an answer in about a minute)
    and the dataset's own (cifar10 for a folder) on a GPU or under a --config (LABELING_PRESET_HELP)."""
    on_cpu = (args.device or "cpu") == "cpu"
    preset = args.preset or ("quick" if on_cpu and args.config is None else None)
    return default_preset(preset, args.dataset or "imagefolder")


def score_meaning(result: QueryResult) -> str:
    """How a query's score runs with its rank, in words."""
    if result.score_order == "not the order":
        return "describes each image; the picks come from the method's diversity step, not this order"
    return f"{result.score_order.split()[0]} scores are picked first"


def cmd_query(args: argparse.Namespace) -> int:

    if args.push and args.format != "labelstudio":
        raise TavaalError("--push sends Label Studio tasks: add --format labelstudio")
    if args.push and args.project is None:
        raise TavaalError("--push needs --project ID, the Label Studio project to import into")
    if args.push and not os.environ.get(API_KEY_ENV):
        raise TavaalError(f"--push needs the Label Studio API key in the environment variable {API_KEY_ENV}")
    check_query_out(args)
    cfg = resolve_config(args, labeling_preset(args))
    budget = args.budget
    if budget is None and args.config is not None:  # a budget in the user's own config file counts
        budget = load_yaml_overrides(args.config).get("budget")
    rt = cfg.runtime
    print(
        f"tavaal query: method {args.method}, preset {cfg.preset}, {cfg.training.epochs} epochs, "
        f"{cfg.training.model}, device {rt.device} ({rt.precision}), labels from {args.labels}",
        flush=True,
    )
    pool, labels = Path(args.pool), Path(args.labels)
    result, predicted = query(pool, labels, args.method, budget, cfg, progress=bars(args))
    if args.format == "labelstudio":
        tasks = export_tasks(result, predicted, args.method, args.image_prefix, args.from_name, args.to_name)
        write_tasks(Path(args.out), tasks)
        if args.push:
            push_tasks(args.push, args.project, tasks)
            print(f"{len(tasks)} tasks imported into project {args.project} at {args.push}")
    else:
        write_suggestions(Path(args.out), result, predicted)
    if result.score_name and result.score_order:
        print(f"rank 1 is labeled first; score: {result.score_name} ({score_meaning(result)})")
    for rank, sid, score in result.rows()[:10]:
        print(f"{rank:>4}  {sid}" + ("" if score is None else f"  score {score:.4g}"))
    shown = " (the first 10 are shown above)" if len(result) > 10 else ""
    print(f"{len(result)} images to label next, written to {args.out}{shown}")
    if args.format == "labelstudio":
        how = "imported into Label Studio" if args.push else f"import {args.out} into Label Studio"
        print(
            f"Next: {how}, label them, export the project as JSON, then run "
            f"`tavaal labels import-labelstudio EXPORT.json --labels {args.labels}` and query again"
        )
    else:
        print(f"Next: label them, add the rows to {args.labels} (path,label) and query again")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tavaal.labeling.backend import Backend  # loaded for this command only
    from tavaal.labeling.serve import serve  # Flask is an extra (tavaal[serve])

    if (args.label_studio is None) != (args.project is None):
        raise TavaalError("--label-studio URL and --project ID go together (where to refresh predictions)")
    if not args.quiet:  # a live backend tells its operator when it retrains, how long it took, failures
        logging.getLogger("tavaal").setLevel(logging.INFO)
    if args.budget is None and args.config is None:  # a labeling batch, not the protocol budget
        args.budget = QUERY_BUDGET
    cfg = resolve_config(args, labeling_preset(args))
    get_strategy(args.method, cfg)  # a misspelled method fails now, not at the first retrain
    check_output(args.state, "--state", folders={"pool folder": args.pool}, folder=True)
    link = LabelStudioLink(args.label_studio, args.project, args.image_prefix) if args.label_studio else None
    try:
        import flask  # noqa: F401
    except ImportError:
        raise TavaalError("tavaal serve needs Flask: pip install 'tavaal[serve]'") from None
    backend = Backend(
        Path(args.pool),
        Path(args.state),
        args.method,
        cfg,
        retrain_every=args.retrain_every,
        image_prefix=args.image_prefix,
        from_name=args.from_name if args.from_name != "choice" else "",
        refresh=link.refresh if link else None,
    )
    if link is not None:  # catch up on what was annotated, changed or deleted while it was down
        changed = backend.sync(link.annotations())
        n = len(backend.labels())
        print(f"{n} labels in project {args.project} ({changed} changed while the backend was down)")
    serve(backend, args.host, args.port, args.max_body_mb, tuple(args.allow_host))
    return 0


def cmd_labels_import(args: argparse.Namespace) -> int:
    check_output(args.labels, "--labels", files={"export": args.export})
    if args.pool and Path(args.labels).suffix.lower() in image_extensions():
        check_output(args.labels, "--labels", folders={"pool folder": args.pool})
    known = set(list_images(Path(args.pool))) if args.pool else None
    added, present, skipped = merge_labels(
        Path(args.export),
        Path(args.labels),
        known,
        image_prefix=args.image_prefix,
        from_name=args.from_name,
        to_name=args.to_name,
    )
    print(
        f"{added} labels added to {args.labels} ({present} already there, {skipped} tasks skipped, "
        "cancelled or unannotated)"
    )
    return 0


def _add_query(sub: Any) -> None:
    """The ``query`` subcommand's options."""
    q = sub.add_parser("query", help="which images of a folder to label next (human in the loop)")
    q.add_argument("--pool", required=True, help="folder of images (any layout)")
    q.add_argument("--labels", required=True, help="CSV with header path,label (paths relative to --pool)")
    q.add_argument("--method", default="tavaal", help=METHOD_HELP)
    q.add_argument("--preset", default=None, help=LABELING_PRESET_HELP)

    q.add_argument(
        "--out", default="next_to_label.csv", help="where the suggestions go (default: next_to_label.csv)"
    )
    q.add_argument(
        "--format",
        choices=["csv", "labelstudio"],
        default="csv",
        help="csv (rank,path,score,score_name,score_order,predicted,label) or Label Studio's "
        "task-import JSON",
    )
    add_labelstudio_options(q)
    q.add_argument(
        "--push",
        default=None,
        metavar="URL",
        help="also import the tasks into Label Studio at URL "
        f"(API key from ${API_KEY_ENV}; pip install 'tavaal[labelstudio]')",
    )
    q.add_argument("--project", type=int, default=None, help="the Label Studio project id for --push")
    add_config_options(
        q,
        labeling=True,
        helps={"budget": f"images to suggest (default: {QUERY_BUDGET}; every unlabeled one when fewer)"},
    )
    q.set_defaults(func=cmd_query)


def _add_serve(sub: Any) -> None:
    """The ``serve`` subcommand's options."""
    sv = sub.add_parser(
        "serve", help="a Label Studio ML backend: live predictions, retraining on annotations (the live loop)"
    )
    sv.add_argument("--pool", required=True, help="folder of images (the project's local files)")
    sv.add_argument("--state", required=True, help="folder for the labels, ranking and learner (reloaded)")
    sv.add_argument("--method", default="tavaal", help=METHOD_HELP)
    sv.add_argument("--preset", default=None, help=LABELING_PRESET_HELP)

    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sv.add_argument(
        "--port", type=_number(int, 1, 65535), default=9090, help="port to listen on (default: 9090)"
    )
    sv.add_argument(
        "--retrain-every",
        type=_number(int, 1, 10**6),
        default=10,
        metavar="K",
        help="retrain after K new or changed labels (default: 10)",
    )
    sv.add_argument(
        "--max-body-mb",
        type=_number(int, 1, 1 << 16),
        default=256,
        metavar="MB",
        help="largest request body accepted, in MiB; a larger one is answered 413 (default: 256)",
    )
    sv.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept requests whose Host header names NAME (e.g. the name Label Studio in a "
        "container calls this machine by); others are refused (DNS rebinding). Repeatable; '*' any",
    )
    sv.add_argument(
        "--label-studio",
        default=None,
        metavar="URL",
        help=f"refresh the project's predictions here after each retrain (API key from ${API_KEY_ENV})",
    )
    sv.add_argument("--project", type=int, default=None, help="the Label Studio project id (--label-studio)")
    add_labelstudio_options(sv)
    add_config_options(
        sv,
        labeling=True,
        helps={"budget": f"images per query, shown first in Label Studio (default: {QUERY_BUDGET})"},
    )
    sv.set_defaults(func=cmd_serve)


def _add_labels(sub: Any) -> None:
    """The ``labels`` subcommand's options."""
    lb = sub.add_parser("labels", help="manage the labels CSV")
    lsub = lb.add_subparsers(dest="labels_command", required=True)
    li = lsub.add_parser("import-labelstudio", help="merge a Label Studio JSON export into the labels CSV")
    li.add_argument("export", help="the project's JSON export (Export > JSON)")
    li.add_argument(
        "--labels", required=True, help="labels CSV (path,label) to merge into; created if missing"
    )
    li.add_argument("--pool", default=None, help="the pool folder, to check that every path is in it")
    add_labelstudio_options(li)
    li.set_defaults(func=cmd_labels_import)
