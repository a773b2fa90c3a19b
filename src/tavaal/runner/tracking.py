"""Optional MLflow tracking to a local file store (``pip install 'tavaal[mlflow]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tavaal.config import RunConfig
from tavaal.errors import TavaalError


class MLflowTracker:
    """Logs the config as parameters, accuracy per cycle as metrics, and the results as artifacts."""

    def __init__(self, out: Path, cfg: RunConfig):
        try:
            import mlflow
        except ImportError:
            raise TavaalError("--mlflow needs MLflow: pip install 'tavaal[mlflow]'") from None
        self.mlflow = mlflow
        mlflow.set_tracking_uri((out / "mlruns").resolve().as_uri())
        mlflow.set_experiment(f"tavaal-{cfg.preset}")
        self.run = mlflow.start_run(run_name=f"{cfg.preset}-{cfg.experiment_hash()}")
        mlflow.log_params({k: str(v) for k, v in cfg.to_dict().items()})

    def log_cycle(self, record: dict[str, Any]) -> None:
        key = f"{record['method']}.trial{record['trial']}"
        self.mlflow.log_metric(f"{key}.accuracy", record["accuracy"], step=record["n_labeled"])
        self.mlflow.log_metric(f"{key}.select_seconds", record["select_seconds"], step=record["n_labeled"])

    def finish(self, out: Path) -> None:
        for name in ("results.jsonl", "config.yaml"):
            if (out / name).is_file():
                self.mlflow.log_artifact(str(out / name))
        self.mlflow.end_run()
