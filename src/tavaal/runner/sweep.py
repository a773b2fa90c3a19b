"""The seam between the driver and the engines that run jobs elsewhere (worker processes here,
Ray tasks on a cluster): the ``Executor`` protocol, the registry the command line chooses from,
and the run skeleton they share (``drive``).

The driver alone writes the results folder (``persist_cycle``: atomic, cycle by cycle), so a kill
of the driver loses at most the cycles in progress and a rerun resumes exactly. A job that raises,
or whose worker dies, is submitted again from its last finished cycle (``retries`` times), then
reported while the others finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from tqdm.auto import tqdm

from tavaal.config import RunConfig
from tavaal.data.base import ArrayDataset
from tavaal.errors import TavaalError, first_line
from tavaal.registry import Registry
from tavaal.runner.folder import ResultsDir, persist_cycle, read_job_state
from tavaal.runner.jobs import CycleCallback, JobSpec


class SweepFailed(TavaalError):
    """Some jobs failed twice; the others finished. Exit code 1 (not 2: no input was wrong)."""

    exit_code = 1


class Event(NamedTuple):
    """What an executor reports: a finished cycle (payload: record, job state, weights or None),
    the end of a job's turn (it is submitted again while cycles are left), or an error (payload:
    one line)."""

    kind: Literal["cycle", "done", "error"]
    job: JobSpec
    payload: Any = None


class Executor(Protocol):
    """Runs jobs away from the driver and reports their cycles, one ``Event`` at a time."""

    retries: int  # how many times a failed job is submitted again
    failures: dict[JobSpec, str]  # after a run: the jobs that failed for good, with their errors

    @property
    def local(self) -> bool:
        """Its workers run on this machine: they take the driver's dataset instead of loading it."""
        ...

    def connect(self, cfg: RunConfig) -> None:
        """Check the options and reach the workers' home (Ray's cluster): errors before any work."""

    def start(self, cfg: RunConfig, ds: ArrayDataset | None, keep_models: bool) -> None:
        """Prepare to run this experiment's jobs (``ds`` None: the workers load it themselves)."""

    def submit(self, job: JobSpec, state: dict[str, Any] | None, first: bool = False) -> None:
        """Run ``job`` from ``state`` (None: from the start); ``first``: ahead of queued jobs."""

    def next_event(self) -> Event | None:
        """The next thing a job reports, or None when nothing came in a short while."""

    def busy(self) -> bool:
        """Jobs are submitted and not yet ended."""

    def stop(self) -> None:
        """Stop every worker now (Ctrl-C, or the driver's own error)."""

    def close(self) -> None:
        """Release what ``connect`` and ``start`` took (idle workers, a Ray this executor started)."""


@dataclass(frozen=True)
class ExecutorOptions:
    """The command line's executor options; each executor checks those that apply to it."""

    jobs: int = 1
    cpus_per_job: float | None = None
    address: str | None = None
    gpus_per_job: float = 0.0


# name -> factory; a factory returns None to run the jobs one after another in this process.
EXECUTORS: Registry[Callable[[ExecutorOptions], Executor | None]] = Registry("executor")


class JobBook:
    """One sweep's jobs as the driver sees them: their states, the ``todo`` jobs with cycles left,
    retries, one progress bar, and the failures reported at the end."""

    def __init__(
        self,
        cfg: RunConfig,
        jobs: list[JobSpec],
        out: ResultsDir,
        progress: bool,
        on_cycle: CycleCallback | None,
        retries: int = 1,
    ):
        self.out, self.on_cycle, self.retries = out, on_cycle, retries
        self.cycles = cfg.protocol.cycles
        self.n_jobs = len(jobs)
        self.states: dict[JobSpec, dict[str, Any] | None] = {job: read_job_state(out, *job) for job in jobs}
        self.todo: list[JobSpec] = [job for job in jobs if self.left(job) > 0]
        self.attempts = dict.fromkeys(self.todo, 0)
        self.failures: dict[JobSpec, str] = {}
        self.bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress, smoothing=0.1)
        self.bar.update(len(jobs) - len(self.todo))

    def left(self, job: JobSpec) -> int:
        state = self.states[job]
        return self.cycles - (0 if state is None else len(state["records"]))

    def cycle_done(self, job: JobSpec, record: dict[str, Any], state: dict[str, Any], nets: Any) -> None:
        """A worker finished a cycle: write it (weights, state, results.jsonl), advance the bar."""
        persist_cycle(self.out, state, nets)
        self.states[job] = state
        self.bar.update(1 / self.cycles)
        self.bar.set_postfix_str(f"{job.method} t{job.trial} c{record['cycle']}")
        if self.on_cycle is not None:
            self.on_cycle(record)

    def job_failed(self, job: JobSpec, error: str) -> bool:
        """A job raised or its worker died: True to submit it again (from ``states[job]``, re-read
        from the folder), False once its retries are spent (it is then reported by ``finish``)."""
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
        """Raise ``SweepFailed`` naming every job that failed for good, counting those that finished."""
        self.close()
        if self.failures:
            lines = "; ".join(f"{job}: {err}" for job, err in sorted(self.failures.items()))
            finished = self.n_jobs - len(self.failures)
            others = f"{finished} finished" if finished else "none finished"
            raise SweepFailed(f"{len(self.failures)} of {self.n_jobs} jobs failed ({others}): {lines}")


def drive(
    executor: Executor,
    cfg: RunConfig,
    jobs: list[JobSpec],
    out: ResultsDir,
    ds: ArrayDataset | None,
    progress: bool = False,
    keep_models: bool = False,
    on_cycle: CycleCallback | None = None,
) -> None:
    """Run ``jobs`` to completion through ``executor``, writing each cycle into ``out`` as it comes;
    raise ``SweepFailed`` at the end if some failed for good."""
    book = JobBook(cfg, jobs, out, progress, on_cycle, executor.retries)
    try:
        executor.start(cfg, ds, keep_models)
        for job in book.todo:
            executor.submit(job, book.states[job])
        while executor.busy():
            event = executor.next_event()
            if event is None:
                continue
            job = event.job
            if event.kind == "cycle":
                book.cycle_done(job, *event.payload)
            elif event.kind == "done":
                if book.left(job) > 0:  # its next turn, at the back of the queue
                    executor.submit(job, book.states[job])
            elif book.job_failed(job, event.payload):
                executor.submit(job, book.states[job], first=True)
    except BaseException:  # Ctrl-C, or the driver's own error: stop the workers too
        executor.stop()
        raise
    finally:
        book.close()
    executor.failures = book.failures
    book.finish()


def one_line(e: BaseException) -> str:
    """A worker's exception as one short line: its type and the first line of its message (the
    original exception's, where the engine wraps it, as Ray does)."""
    cause = getattr(e, "cause", None) or e
    return f"{type(cause).__name__}: {first_line(cause)}"[:300]
