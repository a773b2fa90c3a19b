"""Copy a finished results folder and cut three jobs back, as a kill would leave them: two after an
early cycle (records, pool and next seed of that point), one never started (its folder gone)."""
import json, shutil, sys
from pathlib import Path
import numpy as np

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(src, dst)
(dst / "results.jsonl").unlink()  # merged from the job states again on resume


def seed_of(*parts):
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


import yaml
cfg = yaml.safe_load((dst / "config.yaml").read_text())
for job, keep in (("tavaal-trial0", 2), ("vaal-trial1", 3), ("typiclust-trial2", 1)):
    p = dst / "jobs" / job / "state.json"
    s = json.loads(p.read_text())
    recs = s["records"][:keep]
    n = recs[-1]["n_labeled"] + len(recs[-1]["selected"])
    s["records"], s["cycle"] = recs, keep - 1
    s["next_cycle_seed"] = seed_of(cfg["config"]["seed"], s["trial"], keep)
    s["pool"]["labeled"] = s["pool"]["labeled"][:n]
    print(job, "kept", keep, "cycles,", n, "labels")
    p.write_text(json.dumps(s))
shutil.rmtree(dst / "jobs" / "badge-trial0")
print("removed badge-trial0")
