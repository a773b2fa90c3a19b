"""``tavaal compare --jobs N``: N jobs at once, each in its own process on this machine and on the
chosen device (N per GPU on CUDA; on a CPU the cores split between them).

It needs nothing but the standard library: a GPU machine without Ray still runs several jobs per
device. Workers are started with ``spawn`` (safe with CUDA), run ``job_cycles`` and send every
finished cycle back to the driver (``sweep.drive``), the only process that writes the results
folder, so the folder lock, resume after a kill and the records are those of the sequential path.
A worker that dies without a word (a segfault, the OOM killer) is reported as its job's error.
Ctrl-C stops every worker; the finished cycles are on disk.

Jobs advance one cycle at a time, round robin (a worker runs one cycle of a job, which then goes
to the back of the queue): no job starts cycle c + 1 before every job has started cycle c, so a
sweep cut short by a time limit leaves all methods and trials within one cycle of each other,
which is what a paired comparison needs. Each cycle trains fresh networks from the job's state,
so the records are the same as the sequential path's.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from dataclasses import dataclass, field
from typing import Any

from tavaal.config import RunConfig
from tavaal.data import load_data
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_worker
from tavaal.errors import TavaalError
from tavaal.runner.jobs import JobSpec, job_cycles
from tavaal.runner.sweep import EXECUTORS, Event, ExecutorOptions, one_line

__all__ = ["ProcessExecutor", "threads_per_job"]


def threads_per_job(jobs: int, cpus_per_job: float | None = None) -> int:
    """Intra-op threads of each job: ``cpus_per_job`` if given, else this machine's cores shared out."""
    if cpus_per_job is not None:
        return max(1, int(cpus_per_job))
    return max(1, (os.cpu_count() or 1) // jobs)


def _worker(
    values: dict[str, Any],
    keep_models: bool,
    memory_share: float,
    ds: Any,
    inbox: Any,
    outbox: Any,
    parent: int,
) -> None:
    """A worker process: set up once (torch, the device, the data), then run the jobs it is sent,
    sending every finished cycle to the driver. After a job raises it reports and exits (a CUDA
    error can leave the process unusable); the driver starts a fresh worker if jobs remain."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops us
    ready = None
    while True:
        try:
            task = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the driver was killed while we waited: nothing will come
                return
            continue
        if task is None:
            return
        job, attempt, state = task
        try:
            if ready is None:
                ready = _setup(values, memory_share, ds)
            cfg, data = ready
            # One cycle per task: the driver hands the job out again after it (breadth first).
            cycles = job_cycles(cfg, job, data, state, keep_models=keep_models)
            for record, new_state, nets in cycles:
                outbox.put(("cycle", job, attempt, (record, new_state, nets)))
                break
            cycles.close()
            if os.getppid() != parent:  # the driver is gone (killed): nobody would write this work
                return
            outbox.put(("done", job, attempt, None))
        except BaseException as e:  # reported to the driver, which retries or reports the job
            outbox.put(("error", job, attempt, one_line(e)))
            return


def _setup(values: dict[str, Any], memory_share: float, ds: Any) -> tuple[RunConfig, Any]:
    """The worker's config, device (threads from ``values``, its share of a GPU's memory) and
    data, once."""
    cfg, device = setup_worker(values, memory_share)
    return cfg, (ds if ds is not None else load_data(cfg.data, quiet=True)).to(device)


@dataclass
class _Worker:
    proc: Any
    inbox: Any
    job: JobSpec | None = None  # the job it runs now


@dataclass
class ProcessExecutor:
    """``jobs`` worker processes at a time; ``cpus_per_job`` threads each (default: cores / jobs)."""

    jobs: int = 2
    cpus_per_job: float | None = None
    retries: int = 1
    failures: dict[JobSpec, str] = field(default_factory=dict)
    local = True  # the workers run here: they get the driver's dataset instead of loading it again

    def connect(self, cfg: RunConfig) -> None:
        if self.jobs < 1:
            raise TavaalError(f"--jobs must be 1 or more, got {self.jobs}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise TavaalError(f"--cpus-per-job must be 1 or more, got {self.cpus_per_job:g}")

    def start(self, cfg: RunConfig, ds: ArrayDataset | None, keep_models: bool) -> None:
        self._ctx = mp.get_context("spawn")
        self._outbox = self._ctx.Queue()
        threads = threads_per_job(self.jobs, self.cpus_per_job)
        share = 0.95 / self.jobs  # each job's part of a GPU's memory, so that N fit side by side
        self._args = (cfg.replace(threads=threads).to_dict(), keep_models, share, ds)
        self._pending: list[JobSpec] = []
        self._states: dict[JobSpec, dict[str, Any] | None] = {}
        self._attempt: dict[JobSpec, int] = {}  # messages of an earlier, failed attempt are ignored
        self._workers: list[_Worker] = []

    def submit(self, job: JobSpec, state: dict[str, Any] | None, first: bool = False) -> None:
        self._states[job] = state
        self._attempt.setdefault(job, 0)
        if first:
            self._pending.insert(0, job)
        else:
            self._pending.append(job)

    def busy(self) -> bool:
        return bool(self._pending) or any(w.job for w in self._workers)

    def next_event(self) -> Event | None:
        self._hand_out()
        try:
            kind, job, n, payload = self._outbox.get(timeout=0.2)
        except queue.Empty:
            for w in list(self._workers):
                if w.proc.is_alive():
                    continue
                if w.job is not None:  # died without a word: a segfault, the OOM killer
                    return self._failed(w, f"the worker process died (exit code {w.proc.exitcode})")
                self._workers.remove(w)
            return None
        worker = next((w for w in self._workers if w.job == job), None)
        if worker is None or n != self._attempt[job]:
            return None
        if kind == "cycle":
            return Event("cycle", job, payload)
        if kind == "done":
            worker.job = None
            return Event("done", job)
        return self._failed(worker, payload)

    def _hand_out(self) -> None:
        """Start workers up to ``jobs`` (no more than there are jobs to run), and give each idle
        worker the next pending job."""
        while self._pending and len(self._workers) < min(
            self.jobs, len(self._pending) + sum(bool(w.job) for w in self._workers)
        ):
            inbox = self._ctx.Queue()
            args = (*self._args, inbox, self._outbox, os.getpid())
            proc = self._ctx.Process(target=_worker, args=args, daemon=True)
            proc.start()
            self._workers.append(_Worker(proc, inbox))
        for w in self._workers:
            if w.job is None and self._pending:
                w.job = self._pending.pop(0)
                w.inbox.put((w.job, self._attempt[w.job], self._states[w.job]))

    def _failed(self, worker: _Worker, error: str) -> Event:
        job = worker.job
        assert job is not None
        self._workers.remove(worker)
        worker.proc.join(5)
        self._attempt[job] += 1
        return Event("error", job, error)

    def stop(self) -> None:
        for w in self._workers:
            w.proc.terminate()
        for w in self._workers:
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()
        self._workers = []

    def close(self) -> None:
        """Let idle workers exit (each finishes what it holds first)."""
        for w in getattr(self, "_workers", []):
            w.inbox.put(None)
        for w in getattr(self, "_workers", []):
            w.proc.join(10)
        self._workers = []


@EXECUTORS.register("local")
def _local(o: ExecutorOptions) -> ProcessExecutor | None:
    """``--executor local`` (the default): the jobs one after another in this process, or with
    ``--jobs N`` in N worker processes here."""
    if o.address or o.gpus_per_job:
        raise TavaalError("--address and --gpus-per-job go with --executor ray")
    if o.jobs < 1:
        raise TavaalError(f"--jobs must be 1 or more, got {o.jobs}")
    return ProcessExecutor(o.jobs, o.cpus_per_job) if o.jobs > 1 else None
