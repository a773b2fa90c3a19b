"""``compare --executor ray`` against the local executor, on a local Ray started once per session."""

import json
import subprocess
import sys

import pytest

from conftest import one_thread_records, tiny_config
from tavaal.cli import main
from tavaal.runner import SweepFailed, run_experiment
from tavaal.runner.ray_tasks import RayExecutor

ray = pytest.importorskip("ray")
METHODS = ["random", "tavaal"]


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole suite: its start-up (~10 s) is paid once."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _cfg(**kw):
    return tiny_config("digits", **{"cycles": 3, "trials": 2, **kw})


def _strip(records):
    """Records without their wall-clock timings (the only fields allowed to differ)."""
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in records]


@pytest.fixture(scope="module")
def local_records(tmp_path_factory, digits):
    """The local executor's records, with the thread count a one-CPU Ray job uses."""
    return one_thread_records(_cfg(), METHODS, tmp_path_factory.mktemp("local"), digits)


def test_ray_gives_the_local_executors_records(ray_cluster, local_records, tmp_path, digits):
    got = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=RayExecutor(cpus_per_job=1))
    assert len(got) == 12 and _strip(got) == _strip(local_records)
    on_disk = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert _strip(on_disk) == _strip(local_records)


def test_a_driver_stopped_mid_sweep_resumes_to_the_same_records(ray_cluster, local_records, tmp_path, digits):
    seen = []

    def stop_after_three(record):
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt  # as Ctrl-C, or a kill, between two cycles

    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            _cfg(), METHODS, tmp_path, ds=digits, executor=RayExecutor(), on_cycle=stop_after_three
        )
    partial = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert 3 <= len(partial) < 12  # every cycle that finished is on disk
    again = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=RayExecutor())
    assert _strip(again) == _strip(local_records)


def test_a_failing_job_is_retried_once_then_reported(ray_cluster, tmp_path, digits, monkeypatch):
    """A factory the driver imports but the workers cannot (tests/ is not on their path): each job
    fails twice in its worker and is reported; nothing of it is written."""
    cfg = _cfg(model="user_nets:make_net", feature_layers="1,3", trials=1)
    with pytest.raises(SweepFailed, match=r"2 of 2 jobs failed .*random trial 0: .*user_nets") as err:
        run_experiment(cfg, METHODS, tmp_path, ds=digits, executor=RayExecutor())
    assert err.value.exit_code == 1
    assert not list(tmp_path.glob("jobs/*/state.json"))


def test_bad_executor_options_are_errors_before_any_job(ray_cluster, tmp_path, capsys):
    base = ["compare", "--preset", "digits", "--methods", "random", "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*base, "--executor", "ray", "--gpus-per-job", "1.5"]) == 2
    assert "--gpus-per-job 1.5: give a fraction of one GPU" in capsys.readouterr().err
    assert main([*base, "--executor", "ray", "--gpus-per-job", "0.5", "--device", "cuda"]) == 2
    assert "the Ray cluster has no GPUs" in capsys.readouterr().err
    assert main([*base, "--gpus-per-job", "0.5"]) == 2
    assert "go with --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "o" / "jobs").exists()


def test_an_unreachable_ray_address_is_one_clear_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tavaal", "compare", "--preset", "digits", "--methods", "random",
         "--executor", "ray", "--address", "127.0.0.1:9", "--out", str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "cannot reach Ray at 127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "o" / "jobs").exists()
