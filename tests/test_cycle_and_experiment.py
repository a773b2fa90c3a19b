import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import strip_timing, tiny_config
from tavaal.errors import TavaalError
from tavaal.pool import Pool
from tavaal.results import read_records
from tavaal.runner import run_experiment


def test_pool_rejects_repeats_and_relabels():
    pool = Pool(10, [1, 2])
    with pytest.raises(TavaalError, match="already labeled"):
        pool.label([2, 3])
    with pytest.raises(TavaalError, match="twice"):
        pool.label([4, 4])
    with pytest.raises(TavaalError, match="indices must lie"):
        pool.label([10])
    pool.label([5])
    assert pool.labeled.tolist() == [1, 2, 5] and 5 not in pool.unlabeled


def test_pool_keeps_ids_and_labels_in_the_order_given():
    pool = Pool(4, ids=["a", "b", "c", "d"])
    pool.label([2, 0], ["cat", "dog"])
    pool.label([3], ["cat"])
    assert pool.labels == {"c": "cat", "a": "dog", "d": "cat"} and pool.values == ["cat", "dog", "cat"]
    assert pool.value(0) == "dog" and pool.value(1) is None and pool.is_labeled(3) and not pool.is_labeled(1)
    assert pool.indices_of(["d", "b"]).tolist() == [3, 1]
    with pytest.raises(TavaalError, match="one label per index"):
        pool.label([1], ["cat", "dog"])
    with pytest.raises(TavaalError, match="unknown id"):
        pool.indices_of(["e"])
    with pytest.raises(TavaalError, match="twice"):
        pool.indices_of(["a", "a"])
    with pytest.raises(TavaalError, match="4 samples but 3 ids"):
        Pool(4, ids=["a", "b", "c"])
    assert pool.labels == {"c": "cat", "a": "dog", "d": "cat"}  # a refused call records nothing


@pytest.mark.parametrize("final_selection", [False, True])
def test_loop_invariants(tmp_path, digits, final_selection):
    cfg = tiny_config(cycles=3, final_selection=final_selection)
    recs = run_experiment(cfg, ["random"], tmp_path, ds=digits)
    labeled = list(recs[0]["initial"])
    for r in recs:
        assert r["n_labeled"] == len(labeled) == cfg.protocol.initial + r["cycle"] * cfg.protocol.budget
        sel = r["selected"]
        last = r["cycle"] == cfg.protocol.cycles - 1
        if last and not final_selection:  # the last selection only serves analyses: not made unless asked
            assert sel == [] and r["candidates"] == [] and r["scores"] is None
            continue
        assert len(sel) == cfg.protocol.budget and not set(sel) & set(labeled)
        labeled += sel
    assert len(set(labeled)) == len(labeled)


def test_pool_needs_one_selection_fewer_without_final_selection(tmp_path, digits):
    n = digits.n_train
    # initial + budget x (cycles - 1) == n fits exactly; with the final selection it does not.
    cfg = tiny_config(initial=n - 20, budget=10, cycles=3)
    recs = run_experiment(cfg, ["random"], tmp_path / "a", ds=digits)
    assert recs[-1]["n_labeled"] == n
    with pytest.raises(TavaalError, match="3 selections"):
        run_experiment(
            tiny_config(initial=n - 20, budget=10, cycles=3, final_selection=True),
            ["random"],
            tmp_path / "b",
            ds=digits,
        )


def test_same_seed_gives_identical_results(tmp_path, digits):
    cfg = tiny_config()
    a = run_experiment(cfg, ["lloss2"], tmp_path / "a", ds=digits)
    b = run_experiment(cfg, ["lloss2"], tmp_path / "b", ds=digits)
    assert [strip_timing(r) for r in a] == [strip_timing(r) for r in b]
    c = run_experiment(tiny_config(seed=1), ["lloss2"], tmp_path / "c", ds=digits)
    assert c[0]["initial"] != a[0]["initial"]


def test_methods_share_the_initial_set_within_a_trial(tmp_path, digits):
    recs = run_experiment(tiny_config(trials=2, cycles=1), ["random", "entropy"], tmp_path, ds=digits)
    init = {(r["method"], r["trial"]): r["initial"] for r in recs}
    assert init[("random", 0)] == init[("entropy", 0)]
    assert init[("random", 1)] == init[("entropy", 1)] != init[("random", 0)]


def test_a_folder_from_another_experiment_is_refused(tmp_path, digits):
    run_experiment(tiny_config(cycles=1), ["random"], tmp_path, ds=digits)
    with pytest.raises(TavaalError, match="different experiment.*epochs"):
        run_experiment(tiny_config(cycles=1, epochs=3), ["random"], tmp_path, ds=digits)


def test_resume_continues_from_the_last_cycle(tmp_path, digits):
    full = run_experiment(tiny_config(cycles=3), ["coreset"], tmp_path / "full", ds=digits)
    part = tmp_path / "part"
    run_experiment(tiny_config(cycles=3), ["coreset"], part, ds=digits)
    state = part / "jobs" / "coreset-trial0" / "state.json"
    s = json.loads(state.read_text())  # roll the job back to after cycle 0, as a kill would leave it
    s["records"] = s["records"][:1]
    s["pool"]["labeled"] = s["records"][0]["initial"] + s["records"][0]["selected"]
    state.write_text(json.dumps(s))
    resumed = run_experiment(tiny_config(cycles=3), ["coreset"], part, ds=digits)
    assert [strip_timing(r) for r in resumed] == [strip_timing(r) for r in full]


def _compare_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tavaal",
        "compare",
        "--preset",
        "digits",
        "--methods",
        "random,tavaal",
        "--trials",
        "1",
        "--cycles",
        "3",
        "--epochs",
        "3",
        "--vae-epochs",
        "1",
        "--initial",
        "20",
        "--budget",
        "10",
        "--out",
        str(out),
        "--quiet",
    ]


def test_sigkill_mid_cycle_then_rerun_equals_uninterrupted(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_compare_cmd(tmp_path / "ref"), env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_compare_cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some cycles are written but not all
        if results.exists() and 1 <= len(results.read_text().splitlines()) < 5:
            time.sleep(0.05)
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_records(results)) < 6
    again = subprocess.run(_compare_cmd(out), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    a, b = read_records(tmp_path / "ref" / "results.jsonl"), read_records(results)
    assert len(a) == 6 and [strip_timing(r) for r in a] == [strip_timing(r) for r in b]


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, digits, capsys):
    import fcntl

    from tavaal.cli import main

    cfg = tiny_config(cycles=1)
    run_experiment(cfg, ["random"], tmp_path, ds=digits)  # the lock is released after a run
    with open(tmp_path / ".lock", "a+") as other:  # another process holding the folder
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.truncate(0)
        other.write("4242")
        other.flush()
        with pytest.raises(TavaalError, match=r"in use by another tavaal process \(pid 4242\)"):
            run_experiment(cfg, ["random"], tmp_path, ds=digits)
        code = main(
            [
                "run",
                "--dataset",
                "digits",
                "--method",
                "random",
                "--cycles",
                "1",
                "--initial",
                "20",
                "--budget",
                "10",
                "--epochs",
                "1",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "in use by another tavaal process" in err and "Traceback" not in err
    assert len(run_experiment(cfg, ["random"], tmp_path, ds=digits)) == 1  # free again: resumes, nothing lost
