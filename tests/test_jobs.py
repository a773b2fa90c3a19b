"""``compare --jobs N``: several (method, trial) jobs at once in worker processes, without Ray."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import one_thread_records, strip_timing, tiny_config
from tavaal.cli import main
from tavaal.results import read_records
from tavaal.runner import SweepFailed, run_experiment
from tavaal.runner.processes import ProcessExecutor, threads_per_job

METHODS = ["random", "tavaal"]


def _cfg(**kw):
    return tiny_config("digits", **{"cycles": 2, "trials": 2, **kw})


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, digits):
    """The sequential executor's records with one thread, as each --jobs worker gets below."""
    return one_thread_records(_cfg(), METHODS, tmp_path_factory.mktemp("seq"), digits)


def test_two_jobs_at_once_give_the_sequential_records(sequential, tmp_path, digits):
    ex = ProcessExecutor(2, cpus_per_job=1)
    got = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=ex)
    assert len(got) == 8 and [strip_timing(r) for r in got] == [strip_timing(r) for r in sequential]
    on_disk = read_records(tmp_path / "results.jsonl")
    assert [strip_timing(r) for r in on_disk] == [strip_timing(r) for r in sequential]


def test_jobs_advance_round_robin(sequential, tmp_path, digits):
    """One cycle per task, the job then to the back of the queue: with one worker the order is
    exactly every job's cycle 0, then every job's cycle 1 (with more workers, starts follow the
    same order; completions may interleave, as jobs take different times)."""
    seen = []
    ex = ProcessExecutor(1, cpus_per_job=1)
    got = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=ex, on_cycle=seen.append)
    order = [(r["method"], r["trial"], r["cycle"]) for r in seen]
    jobs = [("random", 0), ("tavaal", 0), ("random", 1), ("tavaal", 1)]
    assert order == [(m, t, c) for c in (0, 1) for m, t in jobs]
    assert [strip_timing(r) for r in got] == [strip_timing(r) for r in sequential]


def test_ctrl_c_stops_the_workers_and_the_rerun_resumes(sequential, tmp_path, digits):
    seen = []

    def stop_after_three(record):
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt

    ex = ProcessExecutor(2, cpus_per_job=1)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=ex, on_cycle=stop_after_three)
    assert 3 <= len(read_records(tmp_path / "results.jsonl")) < 8
    again = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=ProcessExecutor(2, cpus_per_job=1))
    assert [strip_timing(r) for r in again] == [strip_timing(r) for r in sequential]


FAILING = '''
import multiprocessing, os
from pathlib import Path

import user_nets


def make_net(num_classes):
    """user_nets.make_net, but the first N calls in a worker process raise (N in a file)."""
    if multiprocessing.parent_process() is not None:
        budget = Path(os.environ["TAVAAL_TEST_FAILURES"])
        left = int(budget.read_text())
        if left > 0:
            budget.write_text(str(left - 1))
            raise RuntimeError("injected failure")
    return user_nets.make_net(num_classes)
'''


@pytest.mark.parametrize("failures", [1, 2])
def test_a_failing_job_is_retried_once_then_reported(tmp_path, digits, monkeypatch, failures):
    (tmp_path / "failing_nets.py").write_text(FAILING)
    (tmp_path / "budget").write_text(str(failures))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TAVAAL_TEST_FAILURES", str(tmp_path / "budget"))
    cfg = _cfg(model="failing_nets:make_net", feature_layers="1,3", trials=1)
    out = tmp_path / "out"
    # One worker at a time, so the first job meets the failures: once (retried, then fine) or twice.
    if failures == 1:
        recs = run_experiment(cfg, METHODS, out, ds=digits, executor=ProcessExecutor(1, cpus_per_job=1))
        assert len(recs) == 4
        return
    with pytest.raises(SweepFailed, match=r"1 of 2 jobs failed \(1 finished\): random trial 0: RuntimeError: "
                       "injected failure") as err:  # fmt: skip
        run_experiment(cfg, METHODS, out, ds=digits, executor=ProcessExecutor(1, cpus_per_job=1))
    assert err.value.exit_code == 1
    states = sorted(p.parent.name for p in out.glob("jobs/*/state.json"))
    assert states == ["tavaal-trial0"]  # the other job finished, and nothing of the failed one was written


def _cmd(out, *extra):
    return [sys.executable, "-m", "tavaal", "compare", "--preset", "digits", "--methods", "random,tavaal",
            "--trials", "2", "--cycles", "3", "--epochs", "3", "--initial", "20", "--budget", "10",
            "--out", str(out), "--quiet", *extra]  # fmt: skip


def test_sigkill_of_the_parent_then_rerun_equals_the_sequential_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_cmd(tmp_path / "ref"), env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    jobs = ["--jobs", "2", "--cpus-per-job", "1"]
    proc = subprocess.Popen(_cmd(out, *jobs), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline:  # kill once some cycles are written but not all
        if results.exists() and 1 <= len(results.read_text().splitlines()) < 10:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_records(results)) < 12
    again = subprocess.run(_cmd(out, *jobs), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    a, b = read_records(tmp_path / "ref" / "results.jsonl"), read_records(results)
    assert len(a) == 12 and [strip_timing(r) for r in a] == [strip_timing(r) for r in b]


def test_jobs_options_are_checked_before_any_work(tmp_path, capsys):
    base = ["compare", "--preset", "digits", "--methods", "random", "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*base, "--jobs", "0"]) == 2  # argparse's one-line usage error
    assert "--jobs: 0 is outside 1..256" in capsys.readouterr().err
    assert main([*base, "--jobs", "2", "--cpus-per-job", "0"]) == 2
    assert "--cpus-per-job must be 1 or more" in capsys.readouterr().err
    assert main([*base, "--jobs", "2", "--executor", "ray"]) == 2
    assert "--jobs is for the local executor" in capsys.readouterr().err
    assert not (tmp_path / "o" / "jobs").exists()


def test_threads_per_job_share_the_cores():
    assert threads_per_job(2, 3) == 3
    assert threads_per_job(os.cpu_count() or 1) == 1
    assert threads_per_job(10**6) == 1
    assert json.dumps(threads_per_job(1)) == str(os.cpu_count() or 1)


class InProcess:
    """A third engine through the ``Executor`` seam: jobs run here, one cycle per turn, and the
    jobs named in ``flaky`` raise on their first turns (``times`` of them)."""

    local = True

    def __init__(self, flaky=(), times=1):
        self.retries, self.failures = 1, {}
        self.flaky = {job: times for job in flaky}

    def connect(self, cfg):
        pass

    def start(self, cfg, ds, keep_models):
        self.cfg, self.ds, self.queue, self.events = cfg, ds, [], []

    def submit(self, job, state, first=False):
        self.queue.insert(0 if first else len(self.queue), (job, state))

    def busy(self):
        return bool(self.queue or self.events)

    def next_event(self):
        from tavaal.runner.jobs import job_cycles
        from tavaal.runner.sweep import Event

        if not self.events:
            job, state = self.queue.pop(0)
            if self.flaky.get(job, 0) > 0:
                self.flaky[job] -= 1
                return Event("error", job, "RuntimeError: flaky")
            cycles = job_cycles(self.cfg, job, self.ds, state)
            self.events = [Event("cycle", job, next(cycles)), Event("done", job)]
            cycles.close()
        return self.events.pop(0)

    def stop(self):
        self.queue, self.events = [], []

    def close(self):
        pass


def test_a_new_engine_through_the_executor_seam_gives_the_sequential_records(sequential, tmp_path, digits):
    from tavaal.runner import JobSpec

    ex = InProcess(flaky=[JobSpec("tavaal", 1)])  # fails once: submitted again from its state
    got = run_experiment(_cfg(), METHODS, tmp_path, ds=digits, executor=ex)
    assert [strip_timing(r) for r in got] == [strip_timing(r) for r in sequential] and ex.failures == {}
    twice = InProcess(flaky=[JobSpec("random", 0)], times=2)  # its one retry fails too
    with pytest.raises(
        SweepFailed, match=r"1 of 4 jobs failed \(3 finished\): random trial 0: RuntimeError: flaky"
    ):
        run_experiment(_cfg(), METHODS, tmp_path / "b", ds=digits, executor=twice)
    assert set(twice.failures) == {("random", 0)}
    done = {(r["method"], r["trial"]) for r in read_records(tmp_path / "b" / "results.jsonl")}
    assert done == {("tavaal", 0), ("random", 1), ("tavaal", 1)}  # the others finished
