"""Paired comparisons of two methods over trials: the difference, its 95% confidence interval, the
tests, and a verdict that says what the seeds can tell.

Trials are paired: the same trial of every method starts from the same initial set, so the
difference ``a_t - b_t`` per trial removes the spread that the initial set causes. The interval is
Student's t on those differences, and the verdict follows it: "better" when the whole interval is
above zero, "worse" when below, "no detectable difference" when it spans zero. The paired t-test
is the test that agrees with that interval (p < 0.05 exactly when the 95% interval excludes 0), so
it is the test the verdict uses. The Wilcoxon signed-rank test is reported beside it as a check
that does not assume normal differences; with fewer than 6 pairs it cannot reach p < 0.05
(two-sided), which is why it does not decide the verdict.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
ROUNDING = 16 * float(np.finfo(np.float64).eps)  # relative size of a float64 rounding difference


@dataclass
class Paired:
    """``a - b`` over ``n`` paired trials."""

    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    t_p: float | None  # paired t-test, two-sided
    wilcoxon_p: float | None  # Wilcoxon signed-rank, two-sided

    @property
    def verdict(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return f"not enough trials ({self.n}) for an interval"
        if self.ci_low > 0:
            return "better"
        if self.ci_high < 0:
            return "worse"
        return f"no detectable difference at {self.n} seeds"


def paired(
    a: np.ndarray | list[float], b: np.ndarray | list[float], confidence: float = CONFIDENCE
) -> Paired:
    """The paired comparison of ``a`` with ``b`` (same length, element t = trial t of each)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need two equal-length 1-d arrays, got {a.shape} and {b.shape}")
    from scipy import stats  # SciPy's statistics take 0.5 s to import: on first use, not at start-up

    d = a - b
    # A difference at the rounding level of the values (0.1 + 0.2 against 0.3) is zero: no real
    # comparison differs by 1e-17, and a t statistic on such noise would call it "better", p = 0.
    scale = np.maximum(np.abs(a), np.abs(b))
    d = np.where(np.abs(d) <= ROUNDING * scale, 0.0, d)
    n = len(d)
    if n == 0:
        return Paired(0, math.nan, None, None, None, None)
    mean = float(d.mean())
    if n < 2:
        return Paired(n, mean, None, None, None, None)
    w_p = 1.0
    if np.any(d != 0):
        with warnings.catch_warnings():  # scipy warns of ties and zeros; its p-value handles them
            warnings.simplefilter("ignore")
            w_p = float(stats.wilcoxon(d).pvalue)
    sd = float(d.std(ddof=1))
    if np.allclose(d, d[0], rtol=0, atol=1e-12):  # the same difference in every trial (up to float
        # rounding): the interval is that point, and the t statistic is undefined
        return Paired(n, mean, mean, mean, 1.0 if mean == 0 else 0.0, w_p)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    t_p = float(stats.ttest_1samp(d, 0.0).pvalue)  # = ttest_rel(a, b), on the cleaned differences
    return Paired(n, mean, mean - half, mean + half, t_p, w_p)


def by_trial(
    records: list[dict[str, Any]], figure: str = "accuracy"
) -> dict[str, dict[int, dict[int, float]]]:
    """{method: {n_labeled: {trial: value}}} of ``figure``, records without it left out."""
    out: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.get(figure) is not None:
            out[r["method"]][int(r["n_labeled"])][int(r["trial"])] = float(r[figure])
    return out


def aubc_by_trial(cells: dict[int, dict[int, float]]) -> dict[int, float]:
    """Area under the budget curve per trial, as the mean of the figure over the labeled counts,
    for the trials that have every count. Each count weighs the same: with equal steps (every
    protocol here) that is the area up to a constant; with unequal steps it is not, and
    ``spacing_note`` says so."""
    counts = sorted(cells)
    trials = set.intersection(*(set(cells[n]) for n in counts)) if counts else set()
    return {t: float(np.mean([cells[n][t] for n in counts])) for t in sorted(trials)}


def spacing_note(counts: list[int]) -> str:
    """ "" for equally spaced labeled counts; otherwise a line saying what the AUBC assumes."""
    steps = set(np.diff(sorted(counts)).tolist())
    if len(steps) <= 1:
        return ""
    return (
        f"note: the labeled counts ({', '.join(map(str, sorted(counts)))}) are not equally spaced; the "
        "AUBC is the mean over them, each count weighing the same, not the area over the budget"
    )


def against(
    cells: dict[int, dict[int, float]], base: dict[int, dict[int, float]]
) -> tuple[dict[int, Paired], Paired | None]:
    """Per labeled count and over the whole curve (AUBC): ``cells`` minus ``base`` on common trials.
    The AUBC comparison uses the labeled counts both have."""
    per = {}
    for n in sorted(cells):
        common = sorted(set(cells[n]) & set(base.get(n, {})))
        if common:
            per[n] = paired([cells[n][t] for t in common], [base[n][t] for t in common])
    shared = [n for n in sorted(cells) if n in base]
    if not shared:
        return per, None
    a = aubc_by_trial({n: cells[n] for n in shared})
    b = aubc_by_trial({n: base[n] for n in shared})
    common = sorted(set(a) & set(b))
    return per, (paired([a[t] for t in common], [b[t] for t in common]) if common else None)
