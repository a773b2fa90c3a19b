"""The ``tavaal`` command: run, compare, presets, summary, selection-eval, report, query, labels, toy.
Its options and their help live in ``options``; the labeling commands (query, serve, labels) in
``labeling``."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from tavaal._version import __version__
from tavaal.analysis.summary import full_markdown, summarize, to_csv
from tavaal.atomic import DISK_ERRNOS
from tavaal.cli.labeling import _add_labels, _add_query, _add_serve
from tavaal.cli.options import _number, add_config_options, bars, resolve_config
from tavaal.config import PRESET_NOTES, PRESETS, make_config
from tavaal.errors import TavaalError, clean
from tavaal.paths import check_output
from tavaal.presets import default_preset
from tavaal.results import read_records
from tavaal.runner import EXECUTORS, ExecutorOptions, evaluate_selections, run_experiment
from tavaal.runner.tracking import MLflowTracker
from tavaal.strategies import get_strategy

__all__ = ["build_parser", "main", "resolve_config"]


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
