"""Copy a finished results folder and cut it back as kills leave one: three jobs stopped after an
early cycle (their records, pool and next seed as of that cycle), one never started (folder gone).

    python make_partial.py runs/before runs/partial   # then resume runs/partial with tavaal compare
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml


def derive_seed(*parts: int) -> int:
    """tavaal.learner.learner.derive_seed, repeated so that the cut folder does not need the package."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def main(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    (dst / "results.jsonl").unlink()  # merged from the job states again on resume
    seed = yaml.safe_load((dst / "config.yaml").read_text())["config"]["seed"]
    for job, keep in (("tavaal-trial0", 2), ("vaal-trial1", 3), ("typiclust-trial2", 1)):
        path = dst / "jobs" / job / "state.json"
        state = json.loads(path.read_text())
        records = state["records"][:keep]
        n = records[-1]["n_labeled"] + len(records[-1]["selected"])
        state["records"], state["cycle"] = records, keep - 1
        state["next_cycle_seed"] = derive_seed(seed, state["trial"], keep)
        state["pool"]["labeled"] = state["pool"]["labeled"][:n]
        path.write_text(json.dumps(state))
        print(job, "kept", keep, "cycles,", n, "labels")
    shutil.rmtree(dst / "jobs" / "badge-trial0")
    print("removed badge-trial0")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
