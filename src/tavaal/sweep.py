"""The driver's bookkeeping of a sweep whose jobs run elsewhere (worker processes, Ray tasks): which
jobs are left, each finished cycle written to the results folder as it arrives, one retry per
job from its last finished cycle, one progress bar, and the failures reported at the end.

Only the driver writes the folder (``persist_cycle``: atomic, cycle by cycle), so a kill of the
driver loses at most the cycles in progress, and a rerun resumes exactly.
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from tavaal.errors import TavaalError
from tavaal.experiment import persist_cycle, read_job_state

Job = tuple[str, int]  # (method, trial)


class SweepFailed(TavaalError):
    """Some jobs failed twice; the others finished. Exit code 1 (not 2: no input was wrong)."""

    exit_code = 1


class JobBook:
    """One sweep's jobs as the driver sees them. ``jobs`` are (trial, method) pairs, as
    ``run_experiment`` lists them; ``todo`` the (method, trial) jobs with cycles left."""

    def __init__(self, cfg, jobs, out, progress: bool, on_cycle, retries: int = 1):
        self.out, self.on_cycle, self.retries = out, on_cycle, retries
        self.cycles = cfg.protocol.cycles
        self.n_jobs = len(jobs)
        self.states: dict[Job, dict[str, Any] | None] = {(m, t): read_job_state(out, m, t) for t, m in jobs}
        self.todo: list[Job] = [(m, t) for t, m in jobs if self.left((m, t)) > 0]
        self.attempts = {job: 0 for job in self.todo}
        self.failures: dict[Job, str] = {}
        self.bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress, smoothing=0.1)
        self.bar.update(len(jobs) - len(self.todo))

    def left(self, job: Job) -> int:
        state = self.states[job]
        return self.cycles - (0 if state is None else len(state["records"]))

    def cycle_done(self, job: Job, record: dict[str, Any], state: dict[str, Any], nets: Any) -> None:
        """A worker finished a cycle: write it (weights, state, results.jsonl), advance the bar."""
        persist_cycle(self.out, state, nets)
        self.states[job] = state
        self.bar.update(1 / self.cycles)
        self.bar.set_postfix_str(f"{job[0]} t{job[1]} c{record['cycle']}")
        if self.on_cycle is not None:
            self.on_cycle(record)

    def job_failed(self, job: Job, error: str) -> bool:
        """A job raised or its worker died: True to resubmit it (from ``states[job]``, re-read from
        the folder), False once its retries are spent (it is then reported by ``finish``)."""
        self.attempts[job] += 1
        if self.attempts[job] <= self.retries:
            self.states[job] = read_job_state(self.out, *job)
            return True
        self.failures[job] = error
        self.bar.update(self.left(job) / self.cycles)
        return False

    def close(self) -> None:
        self.bar.close()

    def finish(self) -> None:
        """Raise ``SweepFailed`` naming every job that failed twice, counting those that finished."""
        self.close()
        if self.failures:
            lines = "; ".join(f"{m} trial {t}: {err}" for (m, t), err in sorted(self.failures.items()))
            finished = self.n_jobs - len(self.failures)
            others = f"{finished} finished" if finished else "none finished"
            raise SweepFailed(f"{len(self.failures)} of {self.n_jobs} jobs failed ({others}): {lines}")


def one_line(e: BaseException) -> str:
    """An exception as one short line: its type and the last line of its message."""
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]
