"""Mean +/- std accuracy per (method, labeled count), the paired gain over random with its 95%
confidence interval and test, and the area under the budget curve (AUBC), from records only.

``figure`` chooses what is summarised: ``accuracy`` (each method's own task learner) or
``selection_accuracy`` (one common learner retrained on each method's labeled sets, which judges
the picks apart from the training; ``tavaal compare --selection-eval`` or ``tavaal selection-eval``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from tavaal.analysis.stats import Paired, against, aubc_by_trial, by_trial, paired, spacing_note
from tavaal.errors import TavaalError


@dataclass
class Row:
    method: str
    n_labeled: int
    trials: int
    mean: float
    std: float
    gain_mean: float | None  # mean over trials of (method - random) at the same trial and cycle
    gain_std: float | None
    rel_mean: float | None = None  # mean over trials of (method - random) / random (Figure 5)
    rel_std: float | None = None
    gain: Paired | None = None  # the paired comparison with random: 95% CI, t-test, Wilcoxon


def metric_label(records: list[dict[str, Any]]) -> str:
    """What the records' headline value measures: "mIoU" for segmentation, else "Accuracy"."""
    names = {r.get("metric", "accuracy") for r in records}
    if len(names) > 1:
        raise TavaalError(f"the records mix metrics {sorted(names)}; summarise one task at a time")
    return "mIoU" if names == {"miou"} else "Accuracy"


def _std(v: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for a single trial."""
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def summarize(records: list[dict[str, Any]], baseline: str = "random", figure: str = "accuracy") -> list[Row]:
    """One row per (method, n_labeled), methods in first-seen order; records without ``figure``
    are left out."""
    for i, r in enumerate(records, 1):
        missing = [k for k in ("method", "trial", "cycle", "n_labeled", "accuracy") if k not in r]
        if missing:
            raise TavaalError(f"record {i} lacks {', '.join(missing)}; it is not a tavaal result record")
    acc = by_trial(records, figure)
    order = [m for m in dict.fromkeys(r["method"] for r in records) if m in acc]
    rows = []
    for m in order:
        for n in sorted(acc[m]):
            by_t = acc[m][n]
            v = np.array(list(by_t.values()))
            base = acc.get(baseline, {}).get(n, {})
            common = sorted(set(by_t) & set(base))
            gain_mean = gain_std = rel_mean = rel_std = gain = None
            if common and m != baseline:
                g = np.array([by_t[t] - base[t] for t in common])
                gain_mean, gain_std = float(g.mean()), _std(g)
                gain = paired([by_t[t] for t in common], [base[t] for t in common])
                if all(base[t] > 0 for t in common):
                    rel = g / np.array([base[t] for t in common])
                    rel_mean, rel_std = float(rel.mean()), _std(rel)
            rows.append(
                Row(m, n, len(v), float(v.mean()), _std(v), gain_mean, gain_std, rel_mean, rel_std, gain)
            )
    return rows


@dataclass
class CurveRow:
    """One method's area under the budget curve (mean of the figure over cycles) against the baseline."""

    method: str
    trials: int
    mean: float
    std: float
    vs_baseline: Paired | None


def aubc(records: list[dict[str, Any]], baseline: str = "random", figure: str = "accuracy") -> list[CurveRow]:
    """Per method, the AUBC over the trials that finished every cycle, paired with the baseline."""
    acc = by_trial(records, figure)
    out = []
    for m in dict.fromkeys(r["method"] for r in records):
        if m not in acc:
            continue
        per_trial = aubc_by_trial(acc[m])
        if not per_trial:
            continue
        v = np.array(list(per_trial.values()))
        vs = against(acc[m], acc[baseline])[1] if m != baseline and baseline in acc else None
        out.append(CurveRow(m, len(v), float(v.mean()), _std(v), vs))
    return out


def _ci(p: Paired | None) -> str:
    if p is None:
        return ""
    if p.ci_low is None:
        return f"{100 * p.mean:+.2f} (n={p.n})"
    return f"{100 * p.mean:+.2f} [{100 * p.ci_low:+.2f}, {100 * p.ci_high:+.2f}]"


def _p(x: float | None) -> str:
    return "" if x is None else (f"{x:.3f}" if x >= 0.001 else "<0.001")


def verdict_markdown(curves: list[CurveRow], metric: str = "Accuracy", baseline: str = "random") -> str:
    """The whole-curve table: AUBC mean ± std, the paired difference to the baseline with its 95%
    CI, the paired t-test and Wilcoxon p-values, and the verdict."""
    if not curves:
        return ""
    out = (
        f"Area under the budget curve (mean {metric.lower()} over cycles, %) against {baseline}: paired "
        "over trials, 95% CI (Student t), paired t-test (decides) and Wilcoxon signed-rank (check)\n\n"
        f"| method | AUBC | vs {baseline} [95% CI] | p (t) | p (Wilcoxon) | verdict |\n"
        "|---|---:|---:|---:|---:|---|\n"
    )
    for c in curves:
        v = c.vs_baseline
        out += (
            f"| {c.method} | {100 * c.mean:.2f} ± {100 * c.std:.2f} (n={c.trials}) | {_ci(v)} | "
            f"{_p(v.t_p) if v else ''} | {_p(v.wilcoxon_p) if v else ''} | "
            f"{v.verdict if v else ('(baseline)' if c.method == baseline else '')} |\n"
        )
    return out


def full_markdown(records: list[dict[str, Any]], baseline: str = "random") -> str:
    """What ``tavaal summary`` prints: for the method's own accuracy and, where recorded, the
    selection-only accuracy, the per-cycle tables and the whole-curve verdicts."""
    metric = metric_label(records)
    parts = []
    for figure, title in (
        ("accuracy", f"## {metric} of each method's own task learner"),
        (
            "selection_accuracy",
            f"## Selection only: {metric.lower()} of one common learner retrained on each "
            "method's labeled sets",
        ),
    ):
        rows = summarize(records, baseline, figure)
        if not rows:
            continue
        parts.append(
            title
            + "\n\n"
            + to_markdown(rows, metric, baseline)
            + "\n"
            + verdict_markdown(aubc(records, baseline, figure), metric, baseline)
        )
    note = spacing_note(sorted({int(r["n_labeled"]) for r in records}))
    if parts and note:
        parts.append(note + "\n")
    return "\n".join(parts)


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def to_markdown(rows: list[Row], metric: str = "Accuracy", baseline: str = "random") -> str:
    """Wide tables: the metric (%) mean +/- std; the paired difference to the baseline (points)
    with its 95% CI and the paired t-test's p; for mIoU the relative improvement (%, Figure 5)."""
    methods = list(dict.fromkeys(r.method for r in rows))
    counts = sorted({r.n_labeled for r in rows})
    cell = {(r.method, r.n_labeled): r for r in rows}
    head = "| labeled | " + " | ".join(methods) + " |\n|---:|" + "---:|" * len(methods) + "\n"
    acc = f"{metric} (%), mean ± std over trials\n\n" + head
    gain = (
        f"Paired difference to {baseline} (percentage points): mean [95% CI], p of the paired t-test\n\n"
        + head
    )
    rel = f"Relative improvement over {baseline} (%), mean ± std over trials\n\n" + head
    for n in counts:
        a, g, q = [], [], []
        for m in methods:
            r = cell.get((m, n))
            a.append("" if r is None else f"{_pct(r.mean)} ± {_pct(r.std)} (n={r.trials})")
            g.append(
                ""
                if r is None or r.gain is None
                else _ci(r.gain) + (f", p={_p(r.gain.t_p)}" if r.gain.t_p is not None else "")
            )
            q.append(
                "" if r is None or r.rel_mean is None else f"{100 * r.rel_mean:+.1f} ± {_pct(r.rel_std)}"
            )
        acc += f"| {n} | " + " | ".join(a) + " |\n"
        gain += f"| {n} | " + " | ".join(g) + " |\n"
        rel += f"| {n} | " + " | ".join(q) + " |\n"
    return acc + "\n" + gain + ("\n" + rel if metric == "mIoU" else "")


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "method",
            "n_labeled",
            "trials",
            "accuracy_mean",
            "accuracy_std",
            "gain_mean",
            "gain_std",
            "gain_ci_low",
            "gain_ci_high",
            "gain_t_p",
            "gain_wilcoxon_p",
        ]
    )

    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.6f}"

    for r in rows:
        g = r.gain
        w.writerow(
            [
                r.method,
                r.n_labeled,
                r.trials,
                f(r.mean),
                f(r.std),
                f(r.gain_mean),
                f(r.gain_std),
                f(g and g.ci_low),
                f(g and g.ci_high),
                f(g and g.t_p),
                f(g and g.wilcoxon_p),
            ]
        )
    return buf.getvalue()
