"""The ``tavaal`` command: run, compare, presets, summary, selection-eval, report, query, labels, toy."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from tavaal._version import __version__
from tavaal.analysis.summary import full_markdown, summarize, to_csv
from tavaal.atomic import DISK_ERRNOS
from tavaal.config import FIELDS, PRESET_NOTES, PRESETS, RunConfig, load_yaml_overrides, make_config
from tavaal.data.folder import image_extensions, list_images
from tavaal.errors import TavaalError, clean
from tavaal.labeling.labels import QUERY_BUDGET, query, write_suggestions
from tavaal.labeling.labelstudio import (
    API_KEY_ENV,
    LOCAL_FILES,
    LabelStudioLink,
    export_tasks,
    merge_labels,
    push_tasks,
    write_tasks,
)
from tavaal.learner import QueryResult
from tavaal.paths import check_output
from tavaal.presets import default_preset
from tavaal.results import read_records
from tavaal.runner import EXECUTORS, ExecutorOptions, evaluate_selections, run_experiment
from tavaal.runner.tracking import MLflowTracker
from tavaal.runtime import fast_settings
from tavaal.strategies import STRATEGIES, get_strategy

# Help text for the options that need more than their name (every config field has an option).
METHOD_HELP = f"the selection method (default: tavaal; one of {', '.join(sorted(STRATEGIES))})"
LABELING_PRESET_HELP = (
    "hyper-parameters by name (default: quick on a CPU, cifar10 on a GPU; see `tavaal presets`)"
)
_HELP = {
    "recipe": "paper (default) or authors: set every field in which the authors' code differs from the paper "
    "(docs/fidelity.md); an explicit field still wins",
    "model": "a registered model, or module.path:factory for your own network (with --feature-layers)",
    "vae_augment": "train the VAE and discriminator on augmented images (default: un-augmented, as the "
    "authors' code; r is always computed on un-augmented images)",
    "skip_unreadable": "leave out image files that cannot be decoded (truncated, corrupt), with a warning "
    "that lists them; without it such a file is an error that names it",
    "final_selection": "select after the last cycle as well (--analysis implies it); otherwise the last "
    "cycle trains and evaluates only, so the pool needs initial + budget x (cycles - 1)",
    "lr_milestones": "epochs at which the learning rate is multiplied by --lr-gamma, e.g. 160 or 60,120",
    "download": "download the dataset into --data-dir",
    "imbalance_pattern": "which classes --imbalance-ratio reduces: paper (default: the first five) or "
    "official (the authors' code: the even ones, each to its first samples in file order)",
    "imbalance_ratio": "section 4.3 on any classification set, an image folder too: the reduced classes keep "
    "1/N of their training samples (default 1: as loaded; the test set is never reduced)",
    "precision": "fp32 (default) or bf16: every network's forward and backward under bf16 autocast, "
    "losses and scores in fp32 (on a CPU it pays only with bf16 units: AMX or AVX512-BF16)",
    "channels_last": "channels_last memory format",
    "compile": "torch.compile the task learner",
    "cuda_graphs": "capture the training and VAE steps as CUDA graphs",
    "fused": "fused SGD/Adam kernels on CUDA",
    "analysis": "record candidates' real losses (for the loss-vs-likelihood figure) and the Ranker's and "
    "discriminator's diagnostics (rank correlation with the loss, r's AUC labeled vs unlabeled, saturation)",
    "selection_eval": "also train one common learner (the preset's plain T, no Ranker) on every cycle's "
    "labeled set: selection_accuracy judges a method's picks apart from its training",
    "ranker_for": "own (default): only methods that select with a Ranker train T with L_T + eta L_R; "
    "all: every method does, with its own R (the authors' code)",
    "cudnn_benchmark": "on CUDA, let cuDNN time its convolution algorithms for each shape (default: on)",
}


def _number(kind: type, lo: float, hi: float) -> Any:
    """An argparse type: a finite ``kind`` in [lo, hi], else argparse's one-line usage error."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if kind is int else 'number'}"
            ) from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo:g}..{hi:g}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _finite(text: str) -> float:
    """A config float from the command line: inf and NaN are refused here (one usage line)."""
    v = float(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return v


_finite.__name__ = "float"
_PARSE = {"int": int, "float": _finite, "str": str}


# Config fields of the experiment protocol that mean nothing to a query or a live backend: still
# accepted (a shared --config may hold them), left out of their --help.
NOT_FOR_LABELING = frozenset(
    {"trials", "cycles", "initial", "final_selection", "analysis", "selection_eval", "download", "data_dir"}
)


def add_config_options(
    p: argparse.ArgumentParser, labeling: bool = False, helps: dict[str, str] | None = None
) -> None:
    """One option per config field (``tavaal.config.FIELDS``), typed from its declaration, default
    None so that only the given ones override: ``--x``/``--no-x`` for a bool (text never parses as
    one), comma-separated epochs for ``--lr-milestones``. ``labeling`` (query, serve): the protocol's
    fields are hidden from --help. ``helps``: this subcommand's own help of some fields."""
    g = p.add_argument_group("config overrides (any config field; defaults come from the preset)")
    for name, (_, kind) in FIELDS.items():
        if name == "preset":
            continue
        flag, text = "--" + name.replace("_", "-"), (helps or {}).get(name, _HELP.get(name))
        if labeling and name in NOT_FOR_LABELING:
            text = argparse.SUPPRESS
        if kind == "bool":
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind in _PARSE:
            g.add_argument(flag, dest=name, type=_PARSE[kind], default=None, metavar=kind.upper(), help=text)
        else:  # tuple[int, ...]
            g.add_argument(flag, dest=name, default=None, metavar="E1,E2", help=text)
    p.add_argument(
        "--fast",
        action="store_true",
        help="the fastest measured settings (benchmarks/README.md): on CUDA bf16, channels_last, CUDA "
        "graphs and fused optimizers; on a CPU with bf16 units bf16; on a CPU without them nothing "
        "(fp32 is its fastest); a setting given explicitly is kept",
    )
    p.add_argument("--config", default=None, help="YAML file of config fields")
    p.add_argument("--quiet", action="store_true", help="no progress bars (for logs)")
    if labeling:
        return
    p.add_argument("--keep-models", action="store_true", help="save each cycle's weights under DIR/jobs/")
    p.add_argument(
        "--mlflow", action="store_true", help="log to a local MLflow store (pip install 'tavaal[mlflow]')"
    )


def resolve_config(args: argparse.Namespace, preset: str) -> RunConfig:
    """Preset, then the YAML file, then command-line values; a field set differently in both is an error."""
    cli: dict[str, Any] = {}
    for name in FIELDS:
        v = getattr(args, name, None)
        if v is not None and name != "preset":
            cli[name] = v
    if isinstance(cli.get("lr_milestones"), str):
        try:
            cli["lr_milestones"] = tuple(int(x) for x in cli["lr_milestones"].split(",") if x.strip())
        except ValueError:
            raise TavaalError("--lr-milestones takes comma-separated epochs, e.g. 160 or 60,120") from None
    yml = load_yaml_overrides(args.config) if args.config else {}
    if "preset" in yml:
        yml_preset = yml.pop("preset")
        if args.preset is not None and args.preset != yml_preset:
            raise TavaalError(
                f"conflicting presets: --preset {args.preset} but {args.config} says {yml_preset}"
            )
        preset = yml_preset
    for k in set(yml) & set(cli):
        a, b = yml[k], cli[k]
        if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, tuple) else b):
            raise TavaalError(
                f"conflicting values for {k}: {args.config} says {a!r}, the command line says {b!r}; "
                "give it in one place"
            )
    merged = {**yml, **cli}
    if getattr(args, "fast", False):
        merged.update(fast_settings(merged.get("device", "cpu"), merged))
    return make_config(preset, merged)


def bars(args: argparse.Namespace) -> bool:
    """Progress bars: on a terminal unless --quiet; never in a log file (their escape codes)."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def log_line(record: dict[str, Any]) -> None:
    """One plain line per finished cycle, for logs (where the progress bars are off)."""
    metric = "mIoU" if record.get("metric") == "miou" else "accuracy"
    print(
        f"{record['method']} trial {record['trial']} cycle {record['cycle']}: {record['n_labeled']} labeled, "
        f"{metric} {100 * record['accuracy']:.2f}%, {record['train_seconds']:.1f} s",
        flush=True,
    )


def print_table(records: list[dict[str, Any]]) -> None:
    metric = "mIoU" if records and records[0].get("metric") == "miou" else "accuracy"
    print(
        f"{'method':<11} {'trial':>5} {'cycle':>5} {'labeled':>8} {metric:>9} {'train s':>8} {'select s':>9}"
    )
    for r in records:
        print(
            f"{r['method']:<11} {r['trial']:>5} {r['cycle']:>5} {r['n_labeled']:>8} "
            f"{100 * r['accuracy']:>8.2f}% "
            f"{r['train_seconds']:>8.1f} {r['select_seconds']:>9.2f}"
        )


def _run(args: argparse.Namespace, methods: list[str], preset: str) -> int:

    cfg = resolve_config(args, preset)
    for m in methods:
        get_strategy(m, cfg)  # an unknown name fails before MLflow or Ray start
    check_output(args.out, "--out", folders=cfg.data.input_folders(), folder=True)
    options = ExecutorOptions(
        getattr(args, "jobs", 1),
        getattr(args, "cpus_per_job", None),
        getattr(args, "address", None),
        getattr(args, "gpus_per_job", 0.0),
    )
    executor = EXECUTORS.get(getattr(args, "executor", "local"))(options)  # run_experiment connects it
    tracker = None
    if args.mlflow:
        tracker = MLflowTracker(Path(args.out), cfg)
    plain = not args.quiet and not sys.stderr.isatty()  # a log: a line per cycle instead of bars

    def on_cycle(record: dict[str, Any]) -> None:
        if tracker:
            tracker.log_cycle(record)
        if plain:
            log_line(record)

    t0 = time.perf_counter()
    records = run_experiment(
        cfg,
        methods,
        args.out,
        progress=bars(args),
        keep_models=args.keep_models,
        on_cycle=on_cycle,
        executor=executor,
    )
    wall = time.perf_counter() - t0
    if tracker:
        tracker.finish(Path(args.out))
    print_table(records)
    print(f"\n{len(records)} records in {Path(args.out) / 'results.jsonl'}; wall time {wall:.1f} s")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args, [args.method], default_preset(args.preset, args.dataset))


def cmd_compare(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise TavaalError("--methods needs at least one method name")
    if args.preset is None and args.config is None:
        raise TavaalError("compare needs --preset NAME (see `tavaal presets`) or --config FILE")
    return _run(args, methods, default_preset(args.preset, args.dataset))


def cmd_presets(args: argparse.Namespace) -> int:
    keys = [
        "dataset",
        "model",
        "initial",
        "budget",
        "cycles",
        "epochs",
        "batch_size",
        "lr",
        "latent_dim",
        "vae_lr",
        "eta",
        "lam",
        "beta",
    ]
    keys.insert(keys.index("cycles") + 1, "trials")
    rows = [[name, *(str(make_config(name).get(k)) for k in keys)] for name in PRESETS]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(["preset", *keys])]
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(["preset", *keys], widths))
        )
    )
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print()
    for name, note in PRESET_NOTES.items():
        print(f"{name:<15} {note}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:

    path = Path(args.dir)
    path = path / "results.jsonl" if path.is_dir() else path
    records = read_records(path)
    if args.format == "csv":
        print(to_csv(summarize(records, args.baseline, args.figure)), end="")
    else:
        print(full_markdown(records, args.baseline), end="")
    return 0


def cmd_selection_eval(args: argparse.Namespace) -> int:

    check_output(args.dir, "DIR", folder=True)
    t0 = time.perf_counter()
    n = evaluate_selections(args.dir, args.device, bars(args), args.model, args.download)
    print(
        f"selection_accuracy added to {n} cycles of {args.dir} in {time.perf_counter() - t0:.1f} s; "
        f"`tavaal summary {args.dir}` shows it"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tavaal.analysis.report import write_report  # matplotlib is an extra (tavaal[report])

    check_output(args.out or Path(args.dir) / "report", "--out", folder=True)
    index = write_report(Path(args.dir), Path(args.out) if args.out else None)
    print(f"report written: {index}")
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    from tavaal.runner.toy_figure import run_toy  # draws with matplotlib, an extra (tavaal[report])

    check_output(args.out, "--out", folder=True)
    paths = run_toy(Path(args.out), seed=args.seed, progress=bars(args))
    for p in paths:
        print(p)
    return 0


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
    from tavaal.labeling.serve import Backend, serve  # Flask is an extra (tavaal[serve])

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


def add_labelstudio_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-prefix",
        default=LOCAL_FILES,
        help="what data.image is, before the pool-relative path: a URL prefix, or Label Studio's "
        "local-files path (default, with LOCAL_FILES_DOCUMENT_ROOT set to the pool folder)",
    )
    p.add_argument("--from-name", default="choice", help="the Choices tag's name in the labeling config")
    p.add_argument("--to-name", default="image", help="the Image tag's name (and data key) in the config")


class Parser(argparse.ArgumentParser):
    """argparse with whole option names only (``--epoch`` is not taken for ``--epochs``) and a
    usage error as one line that points to --help, instead of the full usage."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tavaal", description="Deep active learning with TA-VAAL and its baselines.")

    p.add_argument("--version", action="version", version=f"tavaal {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_run,
        _add_compare,
        _add_presets,
        _add_summary,
        _add_selection_eval,
        _add_report,
        _add_query,
        _add_serve,
        _add_labels,
        _add_toy,
    ):
        add(sub)
    return p


def _add_run(sub: Any) -> None:
    """The ``run`` subcommand's options."""
    r = sub.add_parser("run", help="active learning with one method")
    r.add_argument("--method", default="tavaal")
    r.add_argument(
        "--preset", default=None, help="hyper-parameters by name (default: the dataset's own preset)"
    )
    r.add_argument("--out", default="runs/latest", help="results folder (default: runs/latest)")
    add_config_options(r)
    r.set_defaults(func=cmd_run)


def _add_compare(sub: Any) -> None:
    """The ``compare`` subcommand's options."""
    c = sub.add_parser("compare", help="several methods, same initial sets, resumable")
    c.add_argument("--methods", required=True, help="comma-separated method names")
    c.add_argument("--preset", default=None)
    c.add_argument("--out", default="runs/compare", help="results folder (default: runs/compare)")
    ex = c.add_argument_group("executor (--jobs N, or Ray: pip install 'tavaal[ray]')")
    ex.add_argument(
        "--executor",
        choices=EXECUTORS.names(),
        default="local",
        help="local: jobs in this machine's processes (one after another, or --jobs N at once); "
        "ray: each (method, trial) job a Ray task",
    )
    ex.add_argument(
        "--address",
        default=None,
        help="with --executor ray: 'auto' (a running cluster) or ray://host:port; default a local Ray",
    )
    ex.add_argument(
        "--gpus-per-job",
        type=_number(float, 0, 64),
        default=0.0,
        help="GPUs per job, fractional (0.25: four per GPU)",
    )
    ex.add_argument(
        "--cpus-per-job",
        type=_number(float, 0, 1024),
        default=None,
        help="CPU threads per job (Ray: its CPU request, default 1; --jobs N: default cores / N)",
    )
    ex.add_argument(
        "--jobs",
        type=_number(int, 1, 256),
        default=1,
        metavar="N",
        help="local executor: run N (method, trial) jobs at once, each in its own process on the chosen "
        "device (N per GPU on CUDA; on CPU the cores split between them); no Ray needed",
    )
    add_config_options(c)
    c.set_defaults(func=cmd_compare)


def _add_presets(sub: Any) -> None:
    """The ``presets`` subcommand's options."""
    sub.add_parser("presets", help="list the paper's presets").set_defaults(func=cmd_presets)


def _add_summary(sub: Any) -> None:
    """The ``summary`` subcommand's options."""
    s = sub.add_parser(
        "summary", help="mean +/- std accuracy, paired gain over random with 95%% CI and tests, AUBC verdicts"
    )
    s.add_argument("dir")
    s.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    s.add_argument("--baseline", default="random")
    s.add_argument(
        "--figure",
        choices=["accuracy", "selection_accuracy"],
        default="accuracy",
        help="with --format csv: each method's own accuracy, or the common learner's (selection only)",
    )
    s.set_defaults(func=cmd_summary)


def _add_selection_eval(sub: Any) -> None:
    """The ``selection-eval`` subcommand's options."""
    se = sub.add_parser(
        "selection-eval",
        help="judge each method's picks apart from its training: retrain one common learner on every "
        "cycle's labeled set (resumable)",
    )
    se.add_argument("dir", help="a results folder of tavaal run or compare")
    se.add_argument("--device", default=None, help="e.g. cuda (default: the folder's)")
    se.add_argument(
        "--model",
        default=None,
        metavar="MODULE:FACTORY",
        help="the Python model the folder's config names, given again: a folder is data, and tavaal "
        "never imports code because a folder says so",
    )
    se.add_argument(
        "--download",
        action="store_true",
        help="fetch the dataset if it is missing (never because the folder says so)",
    )
    se.add_argument("--quiet", action="store_true", help="no progress bar (for logs)")
    se.set_defaults(func=cmd_selection_eval)


def _add_report(sub: Any) -> None:
    """The ``report`` subcommand's options."""
    rp = sub.add_parser("report", help="figures (PNG) and a markdown index from results")
    rp.add_argument("dir")
    rp.add_argument("--out", default=None, help="folder for the report (default DIR/report)")
    rp.set_defaults(func=cmd_report)


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


def _add_toy(sub: Any) -> None:
    """The ``toy`` subcommand's options."""
    t = sub.add_parser("toy", help="the two-moons figure (Figure 1) end to end")
    t.add_argument("--out", default="runs/toy", help="output folder (default: runs/toy)")
    t.add_argument("--seed", type=_number(int, 0, 2**31 - 1), default=0)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_toy)


def os_error(e: OSError) -> tuple[int, str]:
    """(exit code, one line) for an OS error: 1 for the machine (disk full, quota, file size,
    read-only file system, I/O), 2 for a path the user gave (missing, a folder, no permission)."""
    where = f" ({e.filename})" if e.filename else ""
    reason = (e.strerror or type(e).__name__).lower()
    if e.errno in DISK_ERRNOS or e.errno in (errno.EROFS, errno.EIO):
        return 1, f"{reason}{where}; nothing was lost: free some space or fix the disk, then rerun to resume"
    if e.errno in (errno.EACCES, errno.EPERM):
        return 2, f"permission denied{where}; make it readable/writable or give another path"
    return 2, f"{reason}{where}"


class _StderrHandler(logging.StreamHandler):
    """Warnings to whatever ``sys.stderr`` is when they are logged (not when main first ran)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record))  # no terminal escapes from file names or libraries


def main(argv: list[str] | None = None) -> int:
    import tavaal.train

    tavaal.train.advice_for = "cli"  # advice in flags, not keywords
    if not any(isinstance(h, _StderrHandler) for h in logging.getLogger("tavaal").handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("tavaal: %(levelname)s: %(message)s"))
        logging.getLogger("tavaal").addHandler(handler)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed as one line)
        return e.code if isinstance(e.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except TavaalError as e:
        print(f"tavaal: error: {clean(str(e))}", file=sys.stderr)
        return int(getattr(e, "exit_code", 2))
    except OSError as e:  # a file or the disk failed where no reader named it: still one line
        if isinstance(e, BrokenPipeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        code, text = os_error(e)
        print(f"tavaal: error: {text}", file=sys.stderr)
        return code
    except RecursionError:
        print("tavaal: error: an input is nested too deeply to be read (JSON or YAML)", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "tavaal: error: out of memory; use smaller settings (batch, image size) or data", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print(
            "tavaal: interrupted; completed cycles are saved, rerun the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
