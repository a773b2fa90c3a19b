"""The paper's Figure 1 end to end: train lloss, VAAL and TA-VAAL on the two-moons toy problem
for ``stage`` cycles and draw what each selected at the last one, with the learned boundary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tavaal.analysis.report import plt, save_figure
from tavaal.config import make_config
from tavaal.data import load_dataset, prepare
from tavaal.runner.cycle import make_learner, run_trial


def run_toy(
    out: Path,
    seed: int = 0,
    progress: bool = False,
    methods: tuple[str, ...] = ("lloss", "vaal", "tavaal"),
    stage: int = 5,
) -> list[Path]:
    """Figure 1: moons, the learned decision boundary, and the 10 samples each method picks at stage 5."""
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("moons")
    cfg = make_config("moons", {"seed": seed, "cycles": stage, "final_selection": True})
    x, y = ds.x_train.numpy(), ds.y_train.numpy()
    gx, gy = np.meshgrid(
        np.linspace(x[:, 0].min() - 0.5, x[:, 0].max() + 0.5, 200),
        np.linspace(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5, 200),
    )
    grid = torch.tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float32)
    paths = []
    for m in methods:
        learner = make_learner(cfg, m, ds, 0, progress)
        for rec in run_trial(learner, ds, progress):
            labeled_before = np.asarray(learner.pool.labeled[: rec["n_labeled"]])
        model = learner.model.eval()
        with torch.no_grad():
            prob = torch.softmax(model(prepare(grid, ds, train=False))[0], 1)[:, 1].numpy().reshape(gx.shape)
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.contour(gx, gy, prob, levels=[0.5], colors="black", linestyles="--")
        ax.scatter(x[y == 0, 0], x[y == 0, 1], s=8, c="tab:red", alpha=0.35, label="class 0 (500)")
        ax.scatter(x[y == 1, 0], x[y == 1, 1], s=14, c="tab:blue", alpha=0.7, label="class 1 (50)")
        ax.scatter(
            x[labeled_before, 0],
            x[labeled_before, 1],
            s=30,
            facecolors="none",
            edgecolors="gray",
            label="labeled before",
        )
        sel = np.asarray(rec["selected"])
        ax.scatter(
            x[sel, 0], x[sel, 1], marker="x", s=80, c="black", linewidths=2, label=f"selected ({len(sel)})"
        )
        ax.set(
            title=f"{m}: selection at stage {stage} (test acc. {100 * rec['accuracy']:.1f}%)",
            xlabel="feature 1",
            ylabel="feature 2",
        )
        ax.plot([], [], "k--", label="learned decision boundary")
        ax.legend(loc="lower left", fontsize=8)
        paths.append(save_figure(fig, out / f"toy_{m}.png"))
    return paths
