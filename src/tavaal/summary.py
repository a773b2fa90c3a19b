"""Mean +/- std accuracy per (method, labeled count) and the gain over random, from records only."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def metric_label(records: list[dict[str, Any]]) -> str:
    """What the records' headline value measures: "mIoU" for segmentation, else "Accuracy"."""
    names = {r.get("metric", "accuracy") for r in records}
    if len(names) > 1:
        raise TavaalError(f"the records mix metrics {sorted(names)}; summarise one task at a time")
    return "mIoU" if names == {"miou"} else "Accuracy"


def _std(v: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for a single trial."""
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def summarize(records: list[dict[str, Any]], baseline: str = "random") -> list[Row]:
    """One row per (method, n_labeled), methods in first-seen order."""
    for i, r in enumerate(records, 1):
        missing = [k for k in ("method", "trial", "cycle", "n_labeled", "accuracy") if k not in r]
        if missing:
            raise TavaalError(f"record {i} lacks {', '.join(missing)}; it is not a tavaal result record")
    acc: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    order: list[str] = []
    for r in records:
        if r["method"] not in order:
            order.append(r["method"])
        acc[(r["method"], int(r["n_labeled"]))][int(r["trial"])] = float(r["accuracy"])
    rows = []
    for m in order:
        for n in sorted(k[1] for k in acc if k[0] == m):
            by_trial = acc[(m, n)]
            v = np.array(list(by_trial.values()))
            base = acc.get((baseline, n), {})
            common = sorted(set(by_trial) & set(base))
            gain_mean = gain_std = rel_mean = rel_std = None
            if common and m != baseline:
                g = np.array([by_trial[t] - base[t] for t in common])
                gain_mean, gain_std = float(g.mean()), _std(g)
                if all(base[t] > 0 for t in common):
                    rel = g / np.array([base[t] for t in common])
                    rel_mean, rel_std = float(rel.mean()), _std(rel)
            rows.append(Row(m, n, len(v), float(v.mean()), _std(v), gain_mean, gain_std, rel_mean, rel_std))
    return rows


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def to_markdown(rows: list[Row], metric: str = "Accuracy") -> str:
    """Two wide tables: the metric (%) mean +/- std, and gain over random (points); for mIoU a third,
    the relative improvement over random (%, Figure 5)."""
    methods = list(dict.fromkeys(r.method for r in rows))
    counts = sorted({r.n_labeled for r in rows})
    cell = {(r.method, r.n_labeled): r for r in rows}
    head = "| labeled | " + " | ".join(methods) + " |\n|---:|" + "---:|" * len(methods) + "\n"
    acc = f"{metric} (%), mean ± std over trials\n\n" + head
    gain = "Gain over random (percentage points), mean ± std over trials\n\n" + head
    rel = "Relative improvement over random (%), mean ± std over trials\n\n" + head
    for n in counts:
        a, g, q = [], [], []
        for m in methods:
            r = cell.get((m, n))
            a.append("" if r is None else f"{_pct(r.mean)} ± {_pct(r.std)} (n={r.trials})")
            g.append(
                "" if r is None or r.gain_mean is None else f"{100 * r.gain_mean:+.2f} ± {_pct(r.gain_std)}"
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
    w.writerow(["method", "n_labeled", "trials", "accuracy_mean", "accuracy_std", "gain_mean", "gain_std"])
    for r in rows:
        w.writerow(
            [
                r.method,
                r.n_labeled,
                r.trials,
                f"{r.mean:.6f}",
                f"{r.std:.6f}",
                "" if r.gain_mean is None else f"{r.gain_mean:.6f}",
                "" if r.gain_std is None else f"{r.gain_std:.6f}",
            ]
        )
    return buf.getvalue()
