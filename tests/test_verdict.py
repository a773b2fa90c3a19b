"""The verdict issue: who trains the Ranker, selection judged apart from training, paired statistics,
and the Ranker/D diagnostics."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import strip_timing, tiny_config
from tavaal.analysis.diagnostics import r_auc, spearman
from tavaal.analysis.stats import against, paired, spacing_note
from tavaal.analysis.summary import aubc, full_markdown, summarize
from tavaal.cli import main
from tavaal.config import make_config
from tavaal.errors import TavaalError
from tavaal.oracle import oracle_labels
from tavaal.results import read_records
from tavaal.runner import run_experiment
from tavaal.runner.common import common_learner_metrics
from tavaal.runner.cycle import make_learner, run_trial


# ----------------------------------------------------------------------------- ranker_for
def test_authors_recipe_trains_every_methods_ranker_and_an_explicit_field_wins():
    assert make_config("digits").training.ranker_for == "own"
    assert make_config("digits", {"recipe": "authors"}).training.ranker_for == "all"
    assert make_config("digits", {"recipe": "authors", "ranker_for": "own"}).training.ranker_for == "own"


def test_ranker_for_all_trains_a_random_runs_t_with_the_ranking_loss(moons, monkeypatch):
    import tavaal.learner.learner as learner_mod

    seen = {}
    real = learner_mod.train_task_learner

    def spy(model, ranker, *args, **kw):
        seen["ranker_loss"] = args[4]
        seen["before"] = None if ranker is None else [p.detach().clone() for p in ranker.parameters()]
        out = real(model, ranker, *args, **kw)
        seen["after"] = None if ranker is None else [p.detach().clone() for p in ranker.parameters()]
        return out

    monkeypatch.setattr(learner_mod, "train_task_learner", spy)
    records = {}
    for setting in ("own", "all"):
        cfg = tiny_config("moons", epochs=5, ranker_for=setting, analysis=True)
        learner = make_learner(cfg, "random", moons, 0)
        records[setting] = next(run_trial(learner, moons))
        if setting == "own":
            assert seen["ranker_loss"] is None and seen["before"] is None
        else:
            assert seen["ranker_loss"] == "ranking"
            changed = [not torch.equal(a, b) for a, b in zip(seen["before"], seen["after"])]
            assert all(changed), "every parameter of the random run's Ranker should have been trained"
            assert "rho_r_loss" in records[setting] and "r_auc" in records[setting]
    assert records["own"]["accuracy"] != records["all"]["accuracy"]
    assert records["own"]["candidate_losses"] != records["all"]["candidate_losses"]
    # The random picks themselves do not depend on the training.
    assert records["own"]["selected"] == records["all"]["selected"]


def test_a_folder_written_before_ranker_for_keeps_its_hash():
    cfg = make_config("digits")
    d = cfg.to_dict()
    for later in (
        "ranker_for",
        "typiclust_k",
        "typiclust_max_clusters",
        "typiclust_embedding",
        "typiclust_rule",
        "imbalance_ratio",
        "coreset_embedding",
    ):
        d.pop(later)  # fields that did not exist when the folder was written
    d["amp"] = {"fp32": "none"}.get(d.pop("precision"))  # precision's first name and value
    import hashlib

    from tavaal.config import NOT_IN_HASH

    earlier = {"crop_size": 0, "vae_image_size": 64}  # the fields added later, before ranker_for
    old = {k: v for k, v in d.items() if k not in NOT_IN_HASH and not (k in earlier and v == earlier[k])}
    assert cfg.experiment_hash() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert make_config("digits", {"ranker_for": "all"}).experiment_hash() != cfg.experiment_hash()


# ----------------------------------------------------------------------- selection only
def test_selection_accuracy_depends_only_on_the_labeled_set(digits):
    cfg = tiny_config(ranker_for="all")

    def common(method, idx, extra=()):
        learner = make_learner(cfg, method, digits, 0)
        both = np.r_[idx, np.asarray(extra, dtype=np.int64)]
        learner.label(both.tolist(), oracle_labels(digits, both))
        return common_learner_metrics(learner, idx, 1)["value"]

    labeled = np.random.default_rng(3).choice(digits.n_train, 40, replace=False)
    rest = np.setdiff1d(np.arange(digits.n_train), labeled)[:30]
    a = common("random", labeled)
    b = common("tavaal", labeled[::-1].copy(), extra=rest)  # other labels held, other order
    c = common("mcdropout", np.sort(labeled))
    assert a == b == c
    other = np.random.default_rng(4).choice(digits.n_train, 40, replace=False)
    assert common("random", other) != a
    with pytest.raises(TavaalError, match="not labeled"):
        common_learner_metrics(make_learner(cfg, "random", digits, 0), labeled, 1)


def test_compare_selection_eval_equals_the_later_command_and_changes_nothing_else(tmp_path, capsys):
    common = [
        "--preset",
        "digits",
        "--methods",
        "random,tavaal",
        "--epochs",
        "2",
        "--cycles",
        "3",
        "--initial",
        "20",
        "--budget",
        "10",
        "--latent-dim",
        "8",
        "--lr-milestones",
        "",
        "--trials",
        "1",
        "--quiet",
    ]
    assert main(["compare", *common, "--selection-eval", "--out", str(tmp_path / "with")]) == 0
    assert main(["compare", *common, "--out", str(tmp_path / "without")]) == 0
    with_ = read_records(tmp_path / "with" / "results.jsonl")
    without = read_records(tmp_path / "without" / "results.jsonl")
    assert all("selection_accuracy" not in r for r in without)
    strip = [{k: v for k, v in strip_timing(r).items() if k != "selection_accuracy"} for r in with_]
    assert strip == [strip_timing(r) for r in without]
    # Every method of a trial starts from the same initial set: cycle 0's figure is the same.
    first = {r["selection_accuracy"] for r in with_ if r["cycle"] == 0}
    assert len(first) == 1
    capsys.readouterr()
    assert main(["selection-eval", str(tmp_path / "without"), "--quiet"]) == 0
    assert "selection_accuracy added to 6 cycles" in capsys.readouterr().out
    filled = read_records(tmp_path / "without" / "results.jsonl")
    assert [r["selection_accuracy"] for r in filled] == [r["selection_accuracy"] for r in with_]
    # A second run has nothing left to do (it resumes).
    assert main(["selection-eval", str(tmp_path / "without"), "--quiet"]) == 0
    assert "added to 0 cycles" in capsys.readouterr().out


def test_selection_eval_of_a_folder_without_config_is_a_clear_error(tmp_path, capsys):
    assert main(["selection-eval", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no config.yaml" in err and "Traceback" not in err


def test_selection_eval_refuses_an_inconsistent_job_state(tmp_path, digits, capsys):
    cfg = tiny_config(cycles=2)
    run_experiment(cfg, ["random"], tmp_path, ds=digits)
    state_path = tmp_path / "jobs" / "random-trial0" / "state.json"
    state = json.loads(state_path.read_text())
    state["records"][1]["n_labeled"] += 5
    state_path.write_text(json.dumps(state))
    assert main(["selection-eval", str(tmp_path), "--quiet"]) == 2
    assert "inconsistent" in capsys.readouterr().err


# ---------------------------------------------------------------------------- statistics
def _t4_cdf(t: float) -> float:
    """Student's t CDF with 4 degrees of freedom, in closed form."""
    u = 1 + t * t / 4
    return 0.5 + 3 / 8 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def test_paired_ci_and_t_test_against_a_hand_computation():
    a = [0.80, 0.82, 0.79, 0.85, 0.81]
    b = [0.78, 0.80, 0.80, 0.81, 0.79]
    # d = [.02, .02, -.01, .04, .02]: mean .018, sd sqrt(1.28e-3 / 4), se = sd / sqrt(5) = .008
    p = paired(a, b)
    assert p.n == 5 and p.mean == pytest.approx(0.018)
    half = 2.776445 * 0.008  # t(0.975, 4) from the table
    assert p.ci_low == pytest.approx(0.018 - half, abs=1e-6) and p.ci_high == pytest.approx(
        0.018 + half, abs=1e-6
    )
    assert p.t_p == pytest.approx(2 * (1 - _t4_cdf(0.018 / 0.008)), abs=1e-6)  # t = 2.25: p = 0.0877
    assert p.verdict == "no detectable difference at 5 seeds"


def test_wilcoxon_exact_p_against_a_hand_count():
    # d = [.01, .02, -.03, .04, .05]: ranks 1..5, W- = 3; the exact null counts subsets of {1..5}
    # with a sum <= 3: {}, {1}, {2}, {3}, {1, 2} = 5 of 32, two-sided p = 10 / 32.
    p = paired([0.01, 0.02, -0.03, 0.04, 0.05], [0.0] * 5)
    assert p.wilcoxon_p == pytest.approx(10 / 32)


def test_verdicts_follow_the_interval():
    better = paired([0.9, 0.91, 0.92, 0.93], [0.8, 0.8, 0.81, 0.82])
    worse = paired([0.8, 0.8, 0.81, 0.82], [0.9, 0.91, 0.92, 0.93])
    assert better.verdict == "better" and better.ci_low > 0 and better.t_p < 0.05
    assert worse.verdict == "worse" and worse.ci_high < 0
    same = paired([0.5, 0.6], [0.5, 0.6])
    assert same.mean == 0 and same.ci_low == same.ci_high == 0 and same.verdict.startswith("no detectable")
    assert paired([0.5], [0.4]).verdict.startswith("not enough trials")
    with pytest.raises(ValueError):
        paired([1, 2], [1])


def test_differences_at_rounding_level_are_no_difference():
    p = paired([0.3, 0.1 + 0.2, 0.3], [0.3] * 3)  # 0.1 + 0.2 = 0.30000000000000004
    assert p.mean == 0 and p.t_p == 1.0 and p.verdict == "no detectable difference at 3 seeds"
    q = paired([0.3, 0.1 + 0.2, 0.31], [0.3] * 3)  # a real difference beside the rounding noise
    assert q.mean == pytest.approx(0.01 / 3) and q.verdict.startswith("no detectable")
    r = paired([0.31, 0.32, 0.33, 0.31, 0.32], [0.3] * 5)
    assert r.verdict == "better" and r.t_p < 0.05


def test_the_aubc_says_what_it_assumes_when_counts_are_unequally_spaced(tmp_path, capsys):
    assert spacing_note([10, 20, 30]) == ""
    note = spacing_note([10, 20, 40])
    assert "not equally spaced" in note and "each count weighing the same" in note
    recs = [
        {"method": m, "trial": t, "cycle": c, "n_labeled": n, "accuracy": 0.5 + 0.1 * c + 0.01 * t}
        for m in ("random", "tavaal")
        for t in range(3)
        for c, n in enumerate((10, 20, 40))
    ]
    assert "not equally spaced" in full_markdown(recs)
    assert "not equally spaced" not in full_markdown([r for r in recs if r["n_labeled"] < 40])


def _records(values: dict[str, list[list[float]]], figure: str = "accuracy") -> list[dict]:
    """Records of methods x trials x cycles (values[method][trial][cycle]), 10 labels per cycle."""
    out = []
    for m, trials in values.items():
        for t, curve in enumerate(trials):
            for c, v in enumerate(curve):
                out.append(
                    {"method": m, "trial": t, "cycle": c, "n_labeled": 10 * (c + 1), "accuracy": v, figure: v}
                )
    return out


def test_aubc_is_the_mean_over_cycles_paired_by_trial():
    recs = _records(
        {
            "random": [[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.6, 0.6, 0.6]],
            "tavaal": [[0.6, 0.7, 0.8], [0.5, 0.5, 0.8], [0.6, 0.7, 0.9]],
        }
    )
    rows = {c.method: c for c in aubc(recs)}
    assert rows["random"].mean == pytest.approx(np.mean([0.6, 0.5, 0.6]))
    # per-trial AUBC differences: 0.1, 0.1, 0.1333...
    v = rows["tavaal"].vs_baseline
    assert v.n == 3 and v.mean == pytest.approx(np.mean([0.1, 0.1, 0.4 / 3]))
    per, curve = against({10: {0: 0.6, 1: 0.5}, 20: {0: 0.7, 1: 0.5}}, {10: {0: 0.5, 1: 0.4}, 20: {0: 0.6}})
    assert per[20].n == 1 and curve.n == 1  # only trial 0 has both counts in both methods


def test_summary_prints_the_interval_the_test_and_the_aubc(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.7, size=(6, 3))
    recs = _records(
        {
            "random": base.tolist(),
            "tavaal": (base + 0.05).tolist(),
            "vaal": (base + rng.normal(0, 0.02, (6, 3))).tolist(),
        },
        figure="selection_accuracy",
    )
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "95% CI" in out and "paired t-test" in out and "Wilcoxon" in out and "AUBC" in out
    assert "| tavaal |" in out and "| better |" in out
    assert "Selection only" in out
    assert main(["summary", str(tmp_path), "--format", "csv"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "gain_ci_low" in head and "gain_t_p" in head
    rows = {(r.method, r.n_labeled): r for r in summarize(recs)}
    assert rows[("tavaal", 10)].gain.mean == pytest.approx(0.05)


def _quality():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("quality", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quality_verdict_says_no_detectable_difference_when_the_ci_spans_zero():
    q = _quality()
    recs = _records(
        {
            "random": [[0.5, 0.6], [0.6, 0.7], [0.55, 0.6]],
            "tavaal": [[0.52, 0.58], [0.59, 0.72], [0.55, 0.61]],
            "vaal": [[0.4, 0.5], [0.5, 0.6], [0.45, 0.5]],
        }
    )
    text = q.verdict(recs)
    assert "tavaal vs random over the curve: no detectable difference at 3 seeds" in text
    assert "tavaal vs vaal over the curve: better" in text
    assert "better than" not in text


# --------------------------------------------------------------------------- diagnostics
def test_r_auc_and_spearman_by_hand():
    # pairs (unlabeled, labeled): (0.5, 0) yes, (0.5, 1) no, (2, 0) yes, (2, 1) yes: 3 of 4.
    assert r_auc(np.array([0.0, 1.0]), np.array([0.5, 2.0])) == pytest.approx(0.75)
    assert r_auc(np.array([1.0]), np.array([1.0])) == pytest.approx(0.5)  # a tie counts one half
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 1, 1]), np.array([1, 2, 3])) is None


def test_analysis_records_hold_the_diagnostics(tmp_path, moons):
    cfg = tiny_config("moons", analysis=True, epochs=3)
    recs = run_experiment(cfg, ["random", "vaal", "tavaal"], tmp_path, ds=moons)
    by = {r["method"]: r for r in recs if r["cycle"] == 0}
    assert "rho_r_loss" not in by["random"] and "rho_d_loss" not in by["random"]
    assert "rho_d_loss" in by["vaal"] and "r_auc" not in by["vaal"]
    t = by["tavaal"]
    assert -1 <= t["rho_r_loss"] <= 1 and 0 <= t["r_auc"] <= 1 and 0 <= t["r_saturated"] <= 1
    assert "rho_d_loss" in t and t["r_abs_max"] >= 0
