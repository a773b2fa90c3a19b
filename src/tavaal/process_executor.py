"""``tavaal compare --jobs N``: N (method, trial) jobs at once, each in its own process on this
machine and on the chosen device (N per GPU on CUDA; on a CPU the cores split between them).

It needs nothing but the standard library: a GPU machine without Ray still runs several jobs per
device. Workers are started with ``spawn`` (safe with CUDA), run ``experiment.job_cycles`` and send
every finished cycle back to this process, the only one that writes the results folder (atomically,
cycle by cycle, through ``JobBook``), so the folder lock, resume after a kill and the records are
those of the sequential path. A job that raises, or whose worker dies (a segfault, the OOM killer),
is started again once from its last finished cycle, then reported while the others finish.
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
from tavaal.device import setup_worker
from tavaal.errors import TavaalError
from tavaal.experiment import job_cycles
from tavaal.sweep import Job, JobBook, SweepFailed, one_line

__all__ = ["ProcessExecutor", "SweepFailed", "threads_per_job"]


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
            cycles = job_cycles(cfg, job[0], job[1], data, state, keep_models=keep_models)
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
    job: Job | None = None  # the job it runs now


@dataclass
class ProcessExecutor:
    """``jobs`` worker processes at a time; ``cpus_per_job`` threads each (default: cores / jobs)."""

    jobs: int = 2
    cpus_per_job: float | None = None
    retries: int = 1
    local = True  # the workers run here: they get the driver's dataset instead of loading it again
    failures: dict[Job, str] = field(default_factory=dict)

    def connect(self, cfg: RunConfig) -> None:
        if self.jobs < 1:
            raise TavaalError(f"--jobs must be 1 or more, got {self.jobs}")
        if self.cpus_per_job is not None and self.cpus_per_job < 1:
            raise TavaalError(f"--cpus-per-job must be 1 or more, got {self.cpus_per_job:g}")

    def close(self) -> None:
        pass

    def run(self, cfg, jobs, out, ds, progress, keep_models, on_cycle) -> None:
        """Run ``jobs`` [(trial, method)] to completion, writing each cycle into ``out`` as it comes."""
        ctx = mp.get_context("spawn")
        outbox = ctx.Queue()
        book = JobBook(cfg, jobs, out, progress, on_cycle, self.retries)
        threads = threads_per_job(self.jobs, self.cpus_per_job)
        share = 0.95 / self.jobs  # each job's part of a GPU's memory, so that N fit side by side
        args = (cfg.replace(threads=threads).to_dict(), keep_models, share, ds)
        pending, workers = list(book.todo), []
        attempt = dict.fromkeys(book.todo, 0)

        def start_worker() -> None:
            inbox = ctx.Queue()
            proc = ctx.Process(target=_worker, args=(*args, inbox, outbox, os.getpid()), daemon=True)
            proc.start()
            workers.append(_Worker(proc, inbox))

        def running(job: Job) -> _Worker | None:
            return next((w for w in workers if w.job == job), None)

        def failed(worker: _Worker, error: str) -> None:
            job = worker.job
            workers.remove(worker)
            worker.proc.join(5)
            attempt[job] += 1  # messages still in flight from the failed attempt are ignored
            if book.job_failed(job, error):
                pending.insert(0, job)

        try:
            while pending or any(w.job for w in workers):
                while pending and len(workers) < min(
                    self.jobs, len(pending) + sum(bool(w.job) for w in workers)
                ):
                    start_worker()
                for w in workers:
                    if w.job is None and pending:
                        w.job = pending.pop(0)
                        w.inbox.put((w.job, attempt[w.job], book.states[w.job]))
                try:
                    kind, job, n, payload = outbox.get(timeout=0.2)
                except queue.Empty:
                    for w in list(workers):
                        if w.proc.is_alive():
                            continue
                        if w.job is not None:  # died without a word: a segfault, the OOM killer
                            failed(w, f"the worker process died (exit code {w.proc.exitcode})")
                        else:
                            workers.remove(w)
                    continue
                worker = running(job)
                if worker is None or n != attempt[job]:
                    continue
                if kind == "cycle":
                    book.cycle_done(job, *payload)
                elif kind == "done":
                    worker.job = None
                    if book.left(job) > 0:
                        pending.append(job)
                else:
                    failed(worker, payload)
            for w in workers:
                w.inbox.put(None)
            for w in workers:
                w.proc.join(10)
        except BaseException:  # Ctrl-C, or the driver's own error: stop the workers too
            for w in workers:
                w.proc.terminate()
            for w in workers:
                w.proc.join(5)
                if w.proc.is_alive():
                    w.proc.kill()
            raise
        finally:
            book.close()
        self.failures = book.failures
        book.finish()
