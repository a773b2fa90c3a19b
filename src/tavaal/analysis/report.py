"""The paper's analyses as PNG figures and a markdown index, computed from result records (the
selected-images figure also reloads the dataset the records name, to show the images).

Each figure function returns the file it wrote, or raises ``Skip`` with a one-line reason when
its inputs are not in the records (the report then lists the reason instead of failing).
"""

from __future__ import annotations

import dataclasses
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tavaal.analysis.summary import full_markdown, metric_label, summarize
from tavaal.atomic import atomic_write_bytes, atomic_write_text
from tavaal.config import config_from_dict
from tavaal.data import load_data
from tavaal.errors import TavaalError
from tavaal.results import read_records
from tavaal.strategies import STRATEGIES

try:  # an extra: runs and summaries work without it
    import matplotlib
except ImportError:
    raise TavaalError(
        "figures need matplotlib, which is not installed: pip install 'tavaal[report]'"
    ) from None
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Eleven methods and more: tab10 would give two of them one colour, so tab10 then tab20's pale half.
_COLORS = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20").colors[1::2])
plt.rcParams.update(
    {
        "font.size": 11,
        "axes.titlesize": 13,
        "axes.labelsize": 12,
        "legend.fontsize": 10,
        "figure.dpi": 110,
        "axes.prop_cycle": matplotlib.cycler(color=_COLORS),
    }
)


def adversarial_methods(records: list[dict[str, Any]]) -> list[str]:
    """Methods in the records whose strategy declares itself adversarial (VAE + D scores)."""
    names = dict.fromkeys(r["method"] for r in records)
    return [m for m in names if m in STRATEGIES and STRATEGIES.get(m).adversarial]


class Skip(Exception):
    """A figure whose inputs are missing; the message says which."""


def save_figure(fig, path: Path) -> Path:
    """Render to memory, then write atomically: a full disk leaves the old figure, not half a PNG."""
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _noun(metric: str) -> str:
    """A metric's name inside a sentence: "accuracy", but "mIoU" as written."""
    return metric.lower() if metric == metric.capitalize() else metric


def _dataset_label(records: list[dict[str, Any]]) -> str:
    names = sorted({str(r.get("dataset", "?")) for r in records})
    return ", ".join(names)


def _band_figure(
    rows: list, mean: str, std: str, title: str, ylabel: str, path: Path, baseline: bool = False
) -> Path:
    """One line per method with a shaded +/- std band; values are fractions, drawn in percent."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if baseline:
        ax.axhline(0, color="black", lw=1, ls="--", label="random")
    for m in dict.fromkeys(r.method for r in rows):
        rs = [r for r in rows if r.method == m]
        x = np.array([r.n_labeled for r in rs])
        y = np.array([100 * getattr(r, mean) for r in rs])
        s = np.array([100 * getattr(r, std) for r in rs])
        ax.plot(x, y, marker="o", label=m)
        ax.fill_between(x, y - s, y + s, alpha=0.2)
    ax.set(title=title, xlabel="labeled samples", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(title="method (mean ± std)", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, path)


def accuracy_curves(records: list[dict[str, Any]], out: Path) -> Path:
    """Figures 11 and 12 (12(d): mIoU for segmentation): mean metric with a +/- std band per method."""
    metric = metric_label(records)
    return _band_figure(
        summarize(records),
        "mean",
        "std",
        f"Test {_noun(metric)} vs. labeled samples ({_dataset_label(records)})",
        f"test {_noun(metric)} (%)",
        out / "accuracy.png",
    )


def relative_improvement(records: list[dict[str, Any]], out: Path) -> Path:
    """Figure 5: (method - random) / random per trial and cycle, mean +/- std (segmentation)."""
    rows = [r for r in summarize(records) if r.rel_mean is not None]
    if metric_label(records) != "mIoU":
        raise Skip("Figure 5 is the segmentation benchmark's (mIoU records)")
    if not rows:
        raise Skip("no random baseline in the records (run it with --methods random,...)")
    return _band_figure(
        rows,
        "rel_mean",
        "rel_std",
        f"Relative mIoU improvement over random ({_dataset_label(records)})",
        "(mIoU − random) / random (%)",
        out / "relative_improvement.png",
        baseline=True,
    )


def gain_over_random(records: list[dict[str, Any]], out: Path) -> Path:
    """Figures 3 and 4: accuracy minus random's, paired per trial; the mean with its 95% CI band
    (each own learner on the left; the common learner, selection only, on the right when recorded)."""
    figures = [
        f for f in ("accuracy", "selection_accuracy") if any(r.gain for r in summarize(records, figure=f))
    ]
    if not figures:
        raise Skip("no random baseline in the records (run it with --methods random,...)")
    fig, axes = plt.subplots(1, len(figures), figsize=(7 * len(figures) + 2, 4.5), squeeze=False, sharey=True)
    for ax, figure in zip(axes[0], figures):
        rows = [r for r in summarize(records, figure=figure) if r.gain is not None]
        ax.axhline(0, color="black", lw=1, ls="--", label="random")
        for m in dict.fromkeys(r.method for r in rows):
            rs = [r for r in rows if r.method == m]
            x = np.array([r.n_labeled for r in rs])
            ax.plot(x, [100 * r.gain.mean for r in rs], marker="o", label=m)
            lo = [100 * (r.gain.ci_low if r.gain.ci_low is not None else r.gain.mean) for r in rs]
            hi = [100 * (r.gain.ci_high if r.gain.ci_high is not None else r.gain.mean) for r in rs]
            ax.fill_between(x, lo, hi, alpha=0.15)
        which = "own task learner" if figure == "accuracy" else "common learner (selection only)"
        ax.set(title=f"Gain over random, {which}", xlabel="labeled samples")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric_label(records)} − random (points), 95% CI")
    axes[0][-1].legend(title=_dataset_label(records), loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, out / "gain_over_random.png")


def selection_curves(records: list[dict[str, Any]], out: Path) -> Path:
    """Each method's own accuracy beside the common learner's on its labeled sets (selection only)."""
    if not any(r.get("selection_accuracy") is not None for r in records):
        raise Skip(
            "no selection_accuracy in the records (tavaal selection-eval DIR, or compare --selection-eval)"
        )
    metric = metric_label(records)
    fig, axes = plt.subplots(1, 2, figsize=(16, 4.5), sharey=True)
    for ax, figure, which in zip(
        axes, ("accuracy", "selection_accuracy"), ("own task learner", "common learner")
    ):
        rows = summarize(records, figure=figure)
        for m in dict.fromkeys(r.method for r in rows):
            rs = [r for r in rows if r.method == m]
            x = np.array([r.n_labeled for r in rs])
            y, sd = np.array([100 * r.mean for r in rs]), np.array([100 * r.std for r in rs])
            ax.plot(x, y, marker="o", label=m)
            ax.fill_between(x, y - sd, y + sd, alpha=0.15)
        ax.set(title=f"Test {_noun(metric)}, {which}", xlabel="labeled samples")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test {_noun(metric)} (%), mean ± std")
    axes[1].legend(title=_dataset_label(records), loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, out / "selection_accuracy.png")


DIAGNOSTICS = (
    ("rho_r_loss", "Spearman ρ(R(x), true loss)"),
    ("rho_d_loss", "Spearman ρ(D, true loss) (negative: D calls high loss unlabeled)"),
    ("r_auc", "AUC of r, unlabeled vs labeled (0.5: no separation)"),
    ("r_saturated", "share of σ(r) < 0.01 or > 0.99"),
)


def diagnostics(records: list[dict[str, Any]], out: Path) -> Path:
    """The Ranker's and D's diagnostics per cycle (``--analysis``): mean ± std over trials."""
    present = [(k, t) for k, t in DIAGNOSTICS if any(r.get(k) is not None for r in records)]
    if not present:
        raise Skip("no Ranker or discriminator diagnostics in the records (run with --analysis)")
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present) + 2, 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], present):
        for m in dict.fromkeys(r["method"] for r in records):
            by_n: dict[int, list[float]] = defaultdict(list)
            for r in records:
                if r["method"] == m and r.get(key) is not None:
                    by_n[int(r["n_labeled"])].append(float(r[key]))
            if by_n:
                x = np.array(sorted(by_n))
                y = np.array([np.mean(by_n[n]) for n in x])
                sd = np.array([np.std(by_n[n]) for n in x])
                ax.plot(x, y, marker="o", label=m)
                ax.fill_between(x, y - sd, y + sd, alpha=0.15)
        ax.set(title=title, xlabel="labeled samples")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(title="method", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, out / "diagnostics.png")


def class_entropy(counts: list[int]) -> float:
    """Entropy (nats) of the class counts of one selection."""
    c = np.asarray(counts, dtype=float)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum()) if c.sum() else 0.0


def selection_entropy(records: list[dict[str, Any]], out: Path) -> Path:
    """Figure 7a: class-count entropy of each cycle's selection, bars per method (mean over trials);
    the last cycle, which trains without selecting, has no bar."""
    recs = [r for r in records if r.get("selected") and r.get("selected_class_counts")]
    if not recs:
        raise Skip("records hold no selected_class_counts")
    by = defaultdict(list)
    for r in recs:
        by[(r["method"], r["n_labeled"])].append(class_entropy(r["selected_class_counts"]))
    methods = list(dict.fromkeys(r["method"] for r in recs))
    counts = sorted({r["n_labeled"] for r in recs})
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(7, len(counts) * 1.1) + 2.2, 4.5))
    for i, m in enumerate(methods):
        vals = [np.mean(by[(m, n)]) if by[(m, n)] else np.nan for n in counts]
        ax.bar(np.arange(len(counts)) + (i - (len(methods) - 1) / 2) * width, vals, width, label=m)
    n_classes = len(recs[0]["selected_class_counts"])
    ax.axhline(np.log(n_classes), color="black", ls="--", lw=1, label=f"uniform over {n_classes} classes")
    ax.set_xticks(np.arange(len(counts)), [str(n) for n in counts])
    ax.set(
        title="Class-count entropy of the selected samples",
        xlabel="labeled samples when selecting",
        ylabel="entropy of class counts (nats)",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, out / "selection_entropy.png")


def _last_cycle(records: list[dict[str, Any]], method: str, need: str) -> list[dict[str, Any]]:
    recs = [
        r
        for r in records
        if r["method"] == method and r.get(need) is not None and r.get("score_name") == "d_labeled_prob"
    ]
    if not recs:
        return []
    last = max(r["cycle"] for r in recs)
    return [r for r in recs if r["cycle"] == last]


def likelihood_histogram(records: list[dict[str, Any]], out: Path) -> Path:
    """Figure 7b: D's output over the subset at the last cycle, VAAL against TA-VAAL (and any
    other adversarial method in the records)."""
    found = {m: _last_cycle(records, m, "scores") for m in adversarial_methods(records)}
    found = {m: v for m, v in found.items() if v}
    if not found:
        raise Skip("no records of an adversarial method (vaal, tavaal, ...) with discriminator scores")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    values = {m: np.concatenate([r["scores"] for r in recs]) for m, recs in found.items()}
    lo = min(float(v.min()) for v in values.values())
    hi = max(float(v.max()) for v in values.values())
    bins = np.linspace(
        lo, hi if hi > lo else lo + 1e-3, 41
    )  # the data's own range: D often spans little of [0, 1]
    for m, recs in found.items():
        v = values[m]
        ax.hist(v, bins=bins, alpha=0.55, label=f"{m} ({len(recs)} trial(s))")
    last = sorted({(r["cycle"], r["n_labeled"]) for recs in found.values() for r in recs})
    when = ", ".join(f"cycle {c} ({n} labeled)" for c, n in last)
    ax.set(
        title=f"Discriminator output over the unlabeled subset\nat the last cycle that selected: {when}",
        xlabel="D(r, z): likelihood of being labeled (selection takes the smallest)",
        ylabel="samples",
    )
    ax.legend()
    return save_figure(fig, out / "likelihood_histogram.png")


def loss_vs_likelihood(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """Figure 8: real loss against D's output at the last cycle, selected points highlighted."""
    paths = []
    for m in adversarial_methods(records):
        recs = _last_cycle(records, m, "candidate_losses")
        if not recs:
            continue
        r = recs[0]
        d, loss = np.asarray(r["scores"]), np.asarray(r["candidate_losses"])
        chosen = np.isin(np.asarray(r["candidates"]), np.asarray(r["selected"]))
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        ax.scatter(1 - d[~chosen], loss[~chosen], s=8, alpha=0.4, label="not selected")
        ax.scatter(1 - d[chosen], loss[chosen], s=22, color="crimson", label="selected")
        ax.set(
            title=f"{m}: real loss vs. likelihood of being unlabeled "
            f"(cycle {r['cycle']}, trial {r['trial']})",
            xlabel="1 − D(r, z): likelihood of being unlabeled",
            ylabel="real cross-entropy loss (nats)",
        )
        ax.legend()
        paths.append(save_figure(fig, out / f"loss_vs_likelihood_{m}.png"))
    if not paths:
        raise Skip("no candidate_losses recorded (rerun vaal/tavaal with --analysis)")
    return paths


def selected_grids(
    records: list[dict[str, Any]], out: Path, x_train: np.ndarray | None, classes: list[str] | None
) -> list[Path]:
    """Figure 13: the images each method selected per cycle (its first trial), with class counts."""
    if x_train is None:
        raise Skip("the dataset's images could not be loaded for the selection grids")
    if x_train.ndim != 4:
        raise Skip("the dataset is not made of images")
    paths = []
    for m in dict.fromkeys(r["method"] for r in records):
        trials = [r["trial"] for r in records if r["method"] == m and r.get("selected")]
        if not trials:
            continue
        trial = min(trials)
        recs = sorted(
            (r for r in records if r["method"] == m and r["trial"] == trial and r.get("selected")),
            key=lambda r: r["cycle"],
        )
        cols = min(10, min(len(r["selected"]) for r in recs))
        fig, axes = plt.subplots(len(recs), cols, figsize=(cols * 1.0, len(recs) * 1.25 + 0.6), squeeze=False)
        for row, r in zip(axes, recs):
            for j, ax in enumerate(row):
                img = x_train[r["selected"][j]]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray")
                ax.set_xticks([])
                ax.set_yticks([])
            counts = r.get("selected_class_counts") or []
            top = sorted(
                ((c, (classes or [])[k] if classes else str(k)) for k, c in enumerate(counts) if c),
                reverse=True,
            )[:5]
            row[0].set_ylabel(f"cycle {r['cycle']}", fontsize=9)
            row[cols // 2].set_title(", ".join(f"{n}:{c}" for c, n in top), fontsize=8)
        fig.suptitle(f"{m}, trial {trial}: first {cols} selected images per cycle (titles: top class counts)")
        paths.append(save_figure(fig, out / f"selected_{m}.png"))
    return paths


def _load_images(root: Path) -> tuple[np.ndarray | None, list[str] | None]:
    try:
        cfg = config_from_dict(yaml.safe_load((root / "config.yaml").read_text())["config"])
        # every data field, as the run loaded it (an imbalance_ratio changes the pool's indices)
        ds = load_data(dataclasses.replace(cfg.data, download=False))
        return ds.x_train.numpy(), ds.classes
    except Exception:  # any failure only drops the image grids, with the reason in the index
        return None, None


def write_report(root: Path, out: Path | None = None) -> Path:
    """Write every figure that the records allow, and ``index.md`` listing them and the skips."""
    recs = read_records(root / "results.jsonl" if root.is_dir() else root)
    out = out or (root / "report")
    out.mkdir(parents=True, exist_ok=True)
    x_train, classes = _load_images(root) if root.is_dir() else (None, None)
    figures: list[tuple[str, Callable[[], Any]]] = [
        ("Accuracy vs. labeled samples (Figures 11, 12)", lambda: accuracy_curves(recs, out)),
        ("Gain over random (Figures 3, 4)", lambda: gain_over_random(recs, out)),
        ("Own accuracy and selection only (common learner)", lambda: selection_curves(recs, out)),
        ("Ranker and discriminator diagnostics", lambda: diagnostics(recs, out)),
        ("Relative improvement over random (Figure 5)", lambda: relative_improvement(recs, out)),
        ("Class-count entropy of selections (Figure 7a)", lambda: selection_entropy(recs, out)),
        ("Discriminator likelihood, last cycle (Figure 7b)", lambda: likelihood_histogram(recs, out)),
        ("Real loss vs. likelihood (Figure 8)", lambda: loss_vs_likelihood(recs, out)),
        ("Selected images per cycle (Figure 13)", lambda: selected_grids(recs, out, x_train, classes)),
    ]
    lines = [
        f"# tavaal report: {_dataset_label(recs)}",
        "",
        f"{len(recs)} records from `{root}`.",
        "",
        full_markdown(recs),
        "",
    ]
    for title, make in figures:
        lines.append(f"## {title}")
        try:
            made = make()
            for p in made if isinstance(made, list) else [made]:
                lines.append(f"![{title}]({p.name})")
        except Skip as e:
            lines.append(f"Skipped: {e}.")
        lines.append("")
    index = out / "index.md"
    atomic_write_text(index, "\n".join(lines))
    return index
