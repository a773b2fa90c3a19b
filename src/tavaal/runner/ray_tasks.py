"""``tavaal compare --executor ray``: each (method, trial) job is one Ray task, on a local Ray or a
cluster (``--address``), several per GPU with ``--gpus-per-job 0.25``.

A job's task is a streaming generator: it yields every finished cycle (record, job state, weights
with ``--keep-models``) to the driver (``sweep.drive``), which alone writes the results folder,
atomically, as the local executor does. So a rerun resumes exactly (finished jobs skipped, a
partial job continued from its last cycle), and Ctrl-C (the driver cancels the tasks) or a killed
driver loses only the cycles in progress. Workers load the data themselves from the config's paths
(``--data-dir``, ``--train-dir``...): those must be reachable on every node. A job that raises is
resubmitted once from its last finished cycle, then reported while the others finish.

Ray is the extra ``tavaal[ray]``, imported only here.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from tavaal.config import RunConfig
from tavaal.data import load_data
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_worker
from tavaal.errors import TavaalError, first_line
from tavaal.runner.jobs import JobSpec, job_cycles
from tavaal.runner.sweep import EXECUTORS, Event, ExecutorOptions, one_line

__all__ = ["RayExecutor", "check_gpus_per_job"]
_DATA: dict[str, Any] = {}  # per worker process: the dataset of a config, loaded once


def import_ray():
    try:
        import ray
    except ImportError:
        raise TavaalError(
            "--executor ray needs Ray, which is not installed: pip install 'tavaal[ray]'"
        ) from None
    return ray


def check_gpus_per_job(gpus: float) -> None:
    if gpus < 0 or (gpus > 1 and not float(gpus).is_integer()):
        raise TavaalError(
            f"--gpus-per-job {gpus}: give a fraction of one GPU (0 < F <= 1, e.g. 0.25) or a whole number"
        )


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` or ``ray://host:port`` address must accept a connection: Ray itself retries
    an unreachable one for minutes."""
    if not address or address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TavaalError(f"--address {address!r}: give auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TavaalError(
            f"cannot reach Ray at {address}: {e.strerror or e}; is the cluster running?"
        ) from None


def _job(
    cfg_values: dict[str, Any],
    job: JobSpec,
    state: dict[str, Any] | None,
    keep_models: bool,
    gpu_share: float,
    ds: Any,
):
    """The Ray task: one job's cycles, yielded one by one (runs in a worker process)."""
    # cfg_values carry the job's threads: the same count as a local run gives the same floats.
    cfg, device = setup_worker(cfg_values, gpu_share)
    if ds is None:
        key = json.dumps(cfg_values_data(cfg), sort_keys=True)
        if key not in _DATA:
            _DATA[key] = load_data(cfg.data)
        ds = _DATA[key]
    ds = ds.to(device)
    yield from job_cycles(cfg, job, ds, state, keep_models=keep_models)


def cfg_values_data(cfg: RunConfig) -> dict[str, Any]:
    return cfg.data.values()


@dataclass
class RayExecutor:
    """Where and how big each job's Ray task is."""

    address: str | None = None  # None: start a local Ray; "auto" or "ray://host:port": join one
    gpus_per_job: float = 0.0
    cpus_per_job: float = 1.0
    retries: int = 1
    failures: dict[JobSpec, str] = field(default_factory=dict)
    local = False  # the workers may run on other nodes: they load the data from the config's paths

    def connect(self, cfg: RunConfig) -> None:
        """Join (or start) Ray, and check that the cluster can hold a job; errors before any job."""
        check_gpus_per_job(self.gpus_per_job)
        if self.gpus_per_job > 0 and cfg.runtime.device == "cpu":
            raise TavaalError("--gpus-per-job needs --device cuda (or auto)")
        ray = import_ray()
        if getattr(self, "_ray", None) is not None:
            return
        self._started = False
        if not ray.is_initialized():
            check_reachable(self.address)
            try:
                ray.init(address=self.address, log_to_driver=False, include_dashboard=False)
            except Exception as e:  # ConnectionError, TimeoutError, ValueError: Ray's own types
                where = self.address or "a local Ray"
                first = first_line(e) or type(e).__name__
                raise TavaalError(f"cannot reach Ray at {where}: {first}") from None
            self._started = True
        self._ray = ray
        res = ray.cluster_resources()
        if self.gpus_per_job > 0 and res.get("GPU", 0) == 0:
            self.close()
            raise TavaalError(
                f"--gpus-per-job {self.gpus_per_job} but the Ray cluster has no GPUs; use --gpus-per-job 0"
            )
        if self.cpus_per_job > res.get("CPU", 0):
            self.close()
            raise TavaalError(
                f"--cpus-per-job {self.cpus_per_job} but the Ray cluster has {res.get('CPU', 0):g} CPUs"
            )

    def start(self, cfg: RunConfig, ds: ArrayDataset | None, keep_models: bool) -> None:
        self.connect(cfg)
        ray = self._ray
        self._task = ray.remote(_job).options(
            num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job, num_returns="streaming", max_retries=0
        )
        # The job's threads travel in its config: the same count as a local run gives the same floats.
        self._values = cfg.replace(threads=max(1, int(self.cpus_per_job))).to_dict()
        self._ds_ref = ray.put(ds) if ds is not None else None
        self._keep_models = keep_models
        self._running: dict[Any, JobSpec] = {}  # one streaming task per job

    def submit(self, job: JobSpec, state: dict[str, Any] | None, first: bool = False) -> None:
        args = (self._values, job, state, self._keep_models, self.gpus_per_job, self._ds_ref)
        self._running[self._task.remote(*args)] = job

    def busy(self) -> bool:
        return bool(self._running)

    def next_event(self) -> Event | None:
        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        gen = ready[0]
        job = self._running[gen]
        try:
            record, state, nets = self._ray.get(next(gen))
        except StopIteration:
            del self._running[gen]
            return Event("done", job)
        except Exception as e:  # the job raised (RayTaskError) or its worker died
            del self._running[gen]
            return Event("error", job, one_line(e))
        return Event("cycle", job, (record, state, nets))

    def stop(self) -> None:
        for gen in getattr(self, "_running", {}):
            try:
                self._ray.cancel(gen, force=True)
            except Exception:  # already finished
                pass
        self._running = {}

    def close(self) -> None:
        """Stop the Ray this executor started (a Ray it joined keeps running)."""
        if getattr(self, "_started", False):
            self._ray.shutdown()
        self._started, self._ray = False, None


@EXECUTORS.register("ray")
def _ray(o: ExecutorOptions) -> RayExecutor:
    """``--executor ray``: one Ray task per job, on a local Ray or a cluster (``--address``)."""
    if o.jobs != 1:
        raise TavaalError("--jobs is for the local executor; with --executor ray use --gpus-per-job")
    check_gpus_per_job(o.gpus_per_job)
    cpus = 1.0 if o.cpus_per_job is None else o.cpus_per_job
    if not cpus > 0:
        raise TavaalError(f"--cpus-per-job must be positive, got {cpus:g}")
    return RayExecutor(o.address, o.gpus_per_job, cpus)
