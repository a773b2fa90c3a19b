"""Does TA-VAAL show TA-VAAL's behaviour here? Named protocols run through the product's own
``tavaal compare``, then: accuracy per cycle with the paired difference to random (95% CI and
test), the area under the budget curve (AUBC) with its paired CI, and verdicts against the paper's
claims (TA-VAAL above random; above VAAL) that say "better", "worse" or "no detectable difference
at N seeds". Every protocol records two figures: each method's own accuracy, and the selection-only
accuracy of one common learner retrained on the method's labeled sets (``--selection-eval``), and
the Ranker's and D's diagnostics (``--analysis``). On moons it also measures Figure 1's two
properties of the picks.

    python benchmarks/quality.py moons                          # CPU, 20 seeds, own Ranker training
    python benchmarks/quality.py moons --ranker-for all         # every method's T trains with L_R
    python benchmarks/quality.py digits                         # CPU, 10 seeds
    python benchmarks/quality.py cifar10-short --data D --device cuda   # GPU, < 8 min on one H100/H200
    python benchmarks/quality.py cifar10-cpu --data .cache/cifar10      # real CIFAR-10, 2 cores, ~1 h
    python benchmarks/quality.py cifar10-cpu-imb10 --data .cache/cifar10   # section 4.3's x10 imbalance
    python benchmarks/quality.py moons --results DIR            # print the tables of an existing folder

A rerun on the same --out resumes (compare's own resume). ``--set k=v`` changes a protocol field:
the result is then no longer the named protocol, and the header says so. Run with
OMP_NUM_THREADS=1 on a small machine: these models are too small for intra-op threads to help.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tavaal.analysis.diagnostics import score_diagnostics
from tavaal.analysis.stats import against, aubc_by_trial, by_trial
from tavaal.analysis.summary import full_markdown
from tavaal.cli import main as tavaal_main
from tavaal.results import read_records

MEASURE = ["--selection-eval", "--analysis"]
# Each protocol is a `tavaal compare` command line (the paper's settings unless said).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "moons": {
        "methods": "random,entropy,margin,least-confidence,badge,typiclust,coreset,lloss,lloss2,vaal,tavaal",
        "args": ["--preset", "moons", "--trials", "20", *MEASURE],
        "note": "section 4.1: 20 initial + 10 per stage, 5 stages, 20 seeds (CPU)",
    },
    "digits": {
        "methods": "random,entropy,margin,least-confidence,badge,typiclust,coreset,lloss2,vaal,tavaal",
        "args": ["--preset", "digits", "--trials", "10", *MEASURE],
        "note": "scikit-learn digits, 50 initial + 50 per cycle, 5 cycles, 10 seeds (CPU)",
    },
    # The cifar10 preset (Table 1) with 5 cycles and 10 epochs instead of 200 (lr x0.1 at epoch 8,
    # = 0.8N as 160/200; R frozen after 0.8N; the VAE and D train one pass per T epoch, Algorithm 1).
    # Sized from the 2026-11-27 H200 run at 20 epochs (benchmarks/README.md): eager T and eager
    # VAE, one trial of the four methods took 329 s of cycles (VAE + D passes 75% of it), 3 trials
    # ~990 s; half the epochs halves both, ~495 s, and --fast graphs T (the VAE + D of the paper
    # schedule run eagerly). 10 epochs is the most that 3 seeds x 4 methods x 5 cycles allow.
    "cifar10-short": {
        "methods": "random,vaal,lloss2,tavaal",
        "args": "--preset cifar10 --dataset imagefolder --cycles 5 --trials 3 --epochs 10 --lr-milestones 8 "
        "--fast".split(),
        "note": "CIFAR-10, 1k initial + 1k per cycle, 5 cycles, 3 seeds, 10 epochs, --fast (GPU)",
    },
    # Real CIFAR-10 on a 2-core CPU in about an hour: the cifar10-cpu preset (the paper's recipe at
    # the sizes two cores afford; benchmarks/README.md lists every difference and its reason), every
    # method, 10 seeds, two one-thread jobs at once, bf16 where the CPU has the units (--fast).
    "cifar10-cpu": {
        "methods": "random,entropy,margin,least-confidence,badge,typiclust,coreset,mcdropout,lloss2,vaal,"
        "tavaal",
        "args": "--preset cifar10-cpu --dataset imagefolder --trials 10 --jobs 2 --cpus-per-job 1 "
        "--fast".split()
        + MEASURE,
        "note": "real CIFAR-10 (50k pool, 10k test), tinycnn, 100 initial + 100 per cycle, 5 cycles, "
        "10 seeds (CPU)",
    },
}
# Section 4.3 at the same scale: the first five classes' training images reduced x10 (a 27,500
# pool); accuracy on the whole, balanced test set, as the paper measures it.
PROTOCOLS["cifar10-cpu-imb10"] = {
    "methods": PROTOCOLS["cifar10-cpu"]["methods"],
    "args": [*PROTOCOLS["cifar10-cpu"]["args"], "--imbalance-ratio", "10"],
    "note": "real CIFAR-10, first five classes reduced x10 (27,500 pool, 10k balanced test), otherwise "
    "as cifar10-cpu (CPU)",
}
# protocols that read --data's train/ and test/
FOLDER_DATA = ("cifar10-short", "cifar10-cpu", "cifar10-cpu-imb10")
# The paper's claims (TA-VAAL above random, above VAAL), then TA-VAAL against what practitioners
# compare with today (margin, BADGE, TypiClust).
CLAIMS = (
    ("tavaal", "random"),
    ("tavaal", "vaal"),
    ("tavaal", "margin"),
    ("tavaal", "badge"),
    ("tavaal", "typiclust"),
)


def verdict(records: list[dict[str, Any]], figure: str = "accuracy") -> str:
    """The paper's claims on ``figure``, judged by paired 95% CIs: over the whole budget curve
    (AUBC) and cycle by cycle (how many cycles are better, worse, undecided)."""
    cells = by_trial(records, figure)
    lines = []
    for a, b in CLAIMS:
        if a not in cells or b not in cells:
            continue
        per, curve = against(cells[a], cells[b])
        if curve is None:
            continue
        counts = {"better": 0, "worse": 0}
        for p in per.values():
            if p.verdict in counts:
                counts[p.verdict] += 1
        undecided = len(per) - counts["better"] - counts["worse"]
        ci = f"[{100 * curve.ci_low:+.2f}, {100 * curve.ci_high:+.2f}]" if curve.ci_low is not None else ""
        lines.append(
            f"verdict ({figure}): {a} vs {b} over the curve: {curve.verdict} "
            f"(AUBC {100 * curve.mean:+.2f} points {ci}, paired t p={_p(curve.t_p)}, n={curve.n}); "
            f"per cycle: {counts['better']} better, {counts['worse']} worse, "
            f"{undecided} no detectable difference"
        )
    return "\n".join(lines) or f"verdict ({figure}): no tavaal records with a random or vaal baseline"


def _p(p: float | None) -> str:
    return "(none: one seed)" if p is None else f"{p:.3g}"


DIAG_KEYS = ("rho_r_loss", "rho_d_loss", "r_auc", "r_saturated")


def diagnostics_table(records: list[dict[str, Any]]) -> str:
    """Per method with a Ranker or a D and per labeled count: the mean over trials of the
    ``--analysis`` diagnostics (``tavaal.analysis.diagnostics``)."""
    lines = [
        "| method | labeled | ρ(R(x), loss) | ρ(D, loss) | AUC of r (unlabeled > labeled) | σ(r) saturated |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in dict.fromkeys(r["method"] for r in records):
        recs = [r for r in records if r["method"] == m and any(r.get(k) is not None for k in DIAG_KEYS)]
        for n in sorted({int(r["n_labeled"]) for r in recs}):
            cell = []
            for k in DIAG_KEYS:
                v = [float(r[k]) for r in recs if int(r["n_labeled"]) == n and r.get(k) is not None]
                cell.append(f"{np.mean(v):.2f} ± {np.std(v):.2f}" if v else "")
            lines.append(f"| {m} | {n} | " + " | ".join(cell) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def pick_geometry(records: list[dict[str, Any]]) -> str:
    """Figure 1's two properties, measured on every selection (moons; oracle labels used only here).

    near boundary: mean distance (standardised plane) from a pick to the nearest training sample
    of the other class: small = difficult. spread: mean distance from every training sample to
    its nearest pick of that selection (the k-center radius): small = influential over the whole
    set. Both are given with the same figure for the candidates the method chose from (what a
    random pick scores on average) and the share of picks from the minority class.
    """
    from tavaal.data import load_dataset

    ds = load_dataset("moons")
    x = ds.batch(np.arange(ds.n_train), train=False).numpy()
    y = ds.y_train.numpy()
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    to_other = np.where(y[:, None] != y[None], d, np.inf).min(axis=1)
    lines = [
        "| method | picks near boundary | candidates near boundary | spread (k-center radius) | "
        "minority share |",
        "|---|---:|---:|---:|---:|",
    ]
    methods = list(dict.fromkeys(r["method"] for r in records))
    for m in methods:
        near, base, spread, minority = [], [], [], []
        for r in records:
            if r["method"] != m or not r.get("selected"):
                continue
            sel, cand = np.asarray(r["selected"]), np.asarray(r["candidates"])
            near.append(to_other[sel].mean())
            base.append(to_other[cand].mean())
            spread.append(d[:, sel].min(axis=1).mean())
            minority.append((y[sel] == 1).mean())
        if near:
            lines.append(
                f"| {m} | {np.mean(near):.3f} ± {np.std(near):.3f} | {np.mean(base):.3f} | "
                f"{np.mean(spread):.3f} ± {np.std(spread):.3f} | {100 * np.mean(minority):.1f}% |"
            )
    return "\n".join(lines)


def degenerate_summary(records: list[dict[str, Any]]) -> str:
    """Per method: selections whose scores were (nearly) constant, selections with candidates tied
    with the last pick left out, and the mean number of distinct scores; recomputed from the
    recorded scores, so older records (without these fields) count the same way."""
    out = []
    for m in dict.fromkeys(r["method"] for r in records):
        recs = [r for r in records if r["method"] == m and r.get("selected") and r.get("scores") is not None]
        if not recs:
            continue
        deg = tied = 0
        distinct = []
        for r in recs:
            scores, cand = np.asarray(r["scores"]), np.asarray(r["candidates"])
            chosen = np.isin(cand, r["selected"])
            cut = scores[chosen]
            # The last pick's score: the lowest chosen score for "highest first", the highest for D.
            edge = cut.max() if r.get("score_name") == "d_labeled_prob" else cut.min()
            tied += bool(np.any(scores[~chosen] == edge))
            diag = score_diagnostics(scores, 0)
            deg += diag["degenerate"]
            distinct.append(diag["n_distinct_scores"])
        out.append(
            f"{m}: {deg}/{len(recs)} selections with constant scores, {tied}/{len(recs)} with ties at "
            f"the cut, {np.mean(distinct):.1f} distinct scores of {len(recs[0]['candidates'])} on average"
        )
    return "\n".join(out)


def folders_table(a: list[dict[str, Any]], b: list[dict[str, Any]], names: tuple[str, str]) -> str:
    """The same protocol run twice (e.g. bf16 and fp32): per method present in both and per figure,
    the paired AUBC difference a - b over the seeds both hold, with its 95% CI and verdict."""
    lines = [
        f"| method | figure | AUBC {names[0]} | AUBC {names[1]} | {names[0]} - {names[1]} [95% CI] "
        "| verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for figure in ("accuracy", "selection_accuracy"):
        ca, cb = by_trial(a, figure), by_trial(b, figure)
        for m in [m for m in ca if m in cb]:
            _, curve = against(ca[m], cb[m])
            if curve is None:
                continue
            ci = "" if curve.ci_low is None else f" [{100 * curve.ci_low:+.2f}, {100 * curve.ci_high:+.2f}]"
            ta, tb = aubc_by_trial(ca[m]), aubc_by_trial(cb[m])
            both = sorted(set(ta) & set(tb))
            lines.append(
                f"| {m} | {figure} | {100 * np.mean([ta[t] for t in both]):.2f} | "
                f"{100 * np.mean([tb[t] for t in both]):.2f} | {100 * curve.mean:+.2f}{ci} | "
                f"{curve.verdict} |"
            )
    return "\n".join(lines)


def timing_table(records: list[dict[str, Any]]) -> str:
    """Per method, the mean over trials of the seconds each part took over a whole trial: T's
    training (with the Ranker, and the VAE + D pass in the paper schedule), the test-set
    evaluation, and the selection; what is left of the wall time went to the selection-only
    learner, the analysis and starting the jobs."""
    lines = [
        "| method | trials | train (s) | evaluate (s) | select (s) | sum (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in dict.fromkeys(r["method"] for r in records):
        per: dict[int, list[float]] = {}
        for r in records:
            if r["method"] == m:
                t = per.setdefault(int(r["trial"]), [0.0, 0.0, 0.0])
                t[0] += r.get("train_seconds", 0.0)
                t[1] += r.get("eval_seconds", 0.0)
                t[2] += r.get("select_seconds", 0.0)
        v = np.mean(list(per.values()), axis=0)
        lines.append(f"| {m} | {len(per)} | {v[0]:.1f} | {v[1]:.1f} | {v[2]:.1f} | {v.sum():.1f} |")
    return "\n".join(lines)


def report(protocol: str, folder: Path) -> None:
    records = read_records(folder / "results.jsonl")
    print(full_markdown(records))
    if protocol == "moons":
        print("Picks (Figure 1): distance to the other class (lower = nearer the boundary) and coverage\n")
        print(pick_geometry(records))
        print()
    diag = diagnostics_table(records)
    if diag:
        print("Ranker and discriminator diagnostics on each cycle's candidates (mean ± std over trials)\n")
        print(diag + "\n")
    print("Seconds per trial by part (mean over trials)\n")
    print(timing_table(records) + "\n")
    deg = degenerate_summary(records)
    if deg:
        print(deg + "\n")
    print(verdict(records, "accuracy"))
    if any(r.get("selection_accuracy") is not None for r in records):
        print(verdict(records, "selection_accuracy"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--out", default=None, help="results folder (default runs/quality/PROTOCOL-RANKER_FOR)")
    p.add_argument("--results", default=None, help="only print the tables of this existing results folder")
    p.add_argument(
        "--data", default=None, help="cifar10-short, cifar10-cpu(-imb10): the folder holding train/ and test/"
    )
    p.add_argument("--device", default=None, help="e.g. cuda (cifar10-short needs a GPU to fit its time)")
    p.add_argument(
        "--ranker-for",
        choices=["own", "all"],
        default="own",
        help="own: only Ranker methods train T with L_R (default); all: every method does (authors' code)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a protocol field (then it is no longer the named protocol)",
    )
    p.add_argument(
        "--against",
        default=None,
        metavar="DIR",
        help="with --results: pair that folder's AUBC with this one's, method by method (e.g. bf16 vs fp32)",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    proto = PROTOCOLS[args.protocol]
    if args.results and args.against:
        a, b = Path(args.results), Path(args.against)
        recs = read_records(a / "results.jsonl"), read_records(b / "results.jsonl")
        print(folders_table(*recs, (a.name, b.name)))
        return 0
    if args.results:
        report(args.protocol, Path(args.results))
        return 0
    out = Path(args.out or f"runs/quality/{args.protocol}-{args.ranker_for}")
    cmd = ["compare", "--methods", proto["methods"], *proto["args"], "--ranker-for", args.ranker_for]
    cmd += ["--out", str(out)]
    if args.protocol in FOLDER_DATA:
        if not args.data:
            p.error(f"{args.protocol} needs --data FOLDER (with train/ and test/ class folders)")
        cmd += ["--train-dir", str(Path(args.data) / "train"), "--test-dir", str(Path(args.data) / "test")]
    if args.device:
        cmd += ["--device", args.device]
    for kv in args.set:
        key, _, value = kv.partition("=")
        flag = key.replace("_", "-")
        if value.lower() in ("true", "false"):  # bool fields are --x / --no-x
            cmd.append(f"--{flag}" if value.lower() == "true" else f"--no-{flag}")
        else:
            cmd += [f"--{flag}", value]
    if args.quiet:
        cmd.append("--quiet")
    changed = f" (changed: {', '.join(args.set)}; not the named protocol)" if args.set else ""
    print(f"# quality protocol {args.protocol}, ranker_for={args.ranker_for}: {proto['note']}{changed}")
    print("# tavaal " + " ".join(cmd) + "\n", flush=True)
    t0 = time.perf_counter()
    code = tavaal_main(cmd)
    if code:
        return code
    print(f"\nwall time {time.perf_counter() - t0:.1f} s\n")
    report(args.protocol, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
