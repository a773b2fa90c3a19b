"""The slow fault probes, on the real thing rather than a monkeypatch: a full disk (tmpfs), no inodes
left, the file-size limit (ulimit -f), a decode cache on a full disk, files another user cannot read
or write, and SIGKILL during compare. Each probe runs the ``tavaal`` command line in a subprocess and
checks what the unit probes check: the exit code, one line on stderr, no traceback, nothing lost.

    .venv/bin/python scripts/probes_slow.py          # about a minute on 2 cores

Mounting a tmpfs and changing user need root; without it those probes are reported as skipped.
Prints one row per probe and the counts; exits 1 if any probe failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from probes import export_task, make_pool, write_labels  # noqa: E402

TAVAAL = [sys.executable, "-m", "tavaal.cli"]
QUERY = ["--preset", "digits", "--epochs", "1", "--budget", "3", "--quiet"]
MOONS = ["--preset", "moons", "--initial", "10", "--budget", "5", "--epochs", "2", "--quiet", "--trials", "2"]
TIMING = ("train_seconds", "select_seconds", "eval_seconds", "wall_seconds", "device")


class Skip(Exception):
    """The probe cannot run on this machine (the reason says why)."""


def tavaal(
    argv: list, env: dict | None = None, pre: list | None = None, shell_limit: str = ""
) -> tuple[int, str]:
    cmd = [*(pre or []), *TAVAAL, *map(str, argv)]
    if shell_limit:  # e.g. "ulimit -f 4": the limit applies to the command only
        cmd = ["bash", "-c", f'{shell_limit}; exec "$@"', "bash", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    return run.returncode, run.stderr


def one_line(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip() and ": warning:" not in ln.lower()]
    assert len(lines) == 1 and "Traceback" not in err, f"not one line: {err[-400:]!r}"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def tmpfs(size: str, inodes: int | None = None) -> Iterator[Path]:
    if os.geteuid() != 0 or not shutil.which("mount"):
        raise Skip("mounting a tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="tavaal-probe-fs-"))
    opts = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True
    ).returncode:
        where.rmdir()
        raise Skip("mount -t tmpfs is not permitted here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def fill(fs: Path, leave: int) -> None:
    """Fill ``fs`` until fewer than ``leave`` bytes are free."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    with open(fs / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    while True:  # the last blocks may not be counted exactly
        st = os.statvfs(fs)
        if st.f_bavail * st.f_frsize < leave:
            return
        with open(fs / "filler", "ab") as f:
            f.write(b"\0" * 1024)


# ------------------------------------------------------------------ the probes
def setup(tmp: Path) -> tuple[Path, dict[str, str], Path]:
    pool = tmp / "pool"
    truth = make_pool(pool)
    paths = sorted(truth)
    labels = write_labels(tmp / "labels.csv", [(p, truth[p]) for p in paths[:9]])
    return pool, truth, labels


def big_export(path: Path, truth: dict[str, str]) -> Path:
    paths = sorted(truth)[9:]
    path.write_text(json.dumps([export_task(k, p, truth[p]) for k, p in enumerate(paths, start=1)]))
    return path


def probe_enospc_labels(tmp: Path) -> str:
    pool, truth, _ = setup(tmp)
    export = big_export(tmp / "e.json", truth)
    with tmpfs("64k") as fs:
        labels = write_labels(fs / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
        before = sha(labels)
        fill(fs, labels.stat().st_size // 2)
        code, err = tavaal(["labels", "import-labelstudio", export, "--labels", labels, "--pool", pool])
        assert code == 1, err
        one_line(err)
        assert sha(labels) == before and not list(fs.glob(".*.tmp")), "labels changed or a temp file left"
        return err.strip()


def probe_no_inodes(tmp: Path) -> str:
    pool, truth, _ = setup(tmp)
    export = big_export(tmp / "e.json", truth)
    with tmpfs("4m", inodes=4) as fs:
        labels = write_labels(fs / "labels.csv", [(p, truth[p]) for p in sorted(truth)[:9]])
        before = sha(labels)
        with contextlib.suppress(OSError):
            for k in range(10):
                (fs / f"f{k}").touch()
        code, err = tavaal(["labels", "import-labelstudio", export, "--labels", labels, "--pool", pool])
        assert code == 1, err
        one_line(err)
        assert sha(labels) == before
        return err.strip()


def probe_efbig_compare(tmp: Path) -> str:
    code, err = tavaal(
        ["compare", "--methods", "random", *MOONS, "--cycles", "2", "--out", tmp / "r"],
        shell_limit="ulimit -f 2",
    )
    assert code == 1, err
    one_line(err)
    assert "file too large" in err.lower(), err
    return err.strip()


def probe_full_cache(tmp: Path) -> str:
    pool, _, labels = setup(tmp)
    with tmpfs("16k") as fs:
        fill(fs, 1024)
        code, err = tavaal(
            ["query", "--pool", pool, "--labels", labels, "--out", tmp / "next.csv", *QUERY],
            env={"TAVAAL_CACHE": str(fs / "cache")},
        )
        assert code == 0, err
        assert "could not keep the decoded images in the cache" in err and "Traceback" not in err, err
        assert len((tmp / "next.csv").read_text().splitlines()) == 4
        return [ln for ln in err.splitlines() if "cache" in ln][0].strip()


def _as_nobody() -> list[str]:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("changing user needs root and setpriv")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _open_to_all(tmp: Path) -> None:
    for p in [tmp, *tmp.rglob("*")]:
        os.chmod(p, 0o777 if p.is_dir() else 0o666)


def probe_unreadable_labels(tmp: Path) -> str:
    pre = _as_nobody()
    pool, _, labels = setup(tmp)
    _open_to_all(tmp)
    os.chmod(labels, 0o600)  # root's file, not nobody's
    before = sha(labels)
    code, err = tavaal(
        ["query", "--pool", pool, "--labels", labels, "--out", tmp / "next.csv", *QUERY],
        env={"TAVAAL_CACHE": str(tmp / "cache")},
        pre=pre,
    )
    assert code == 2, err
    one_line(err)
    assert "permission denied" in err.lower() and sha(labels) == before
    return err.strip()


def probe_unwritable_labels(tmp: Path) -> str:
    pre = _as_nobody()
    pool, truth, labels = setup(tmp)
    export = big_export(tmp / "e.json", truth)
    _open_to_all(tmp)
    os.chmod(labels, 0o644)  # nobody may read it, not write it
    before = sha(labels)
    code, err = tavaal(["labels", "import-labelstudio", export, "--labels", labels, "--pool", pool], pre=pre)
    assert code == 2, err
    one_line(err)
    assert sha(labels) == before
    return err.strip()


def _records(path: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING} for r in rows),
        key=lambda r: (r["method"], r["trial"], r["cycle"]),
    )


def probe_sigkill_compare(tmp: Path) -> str:
    argv = ["compare", "--methods", "random,entropy", *MOONS, "--cycles", "4"]
    code, err = tavaal([*argv, "--out", tmp / "clean"])
    assert code == 0, err
    cmd = [*TAVAAL, *map(str, [*argv, "--out", tmp / "killed"])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp / "killed").glob("jobs/*/state.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sum(len(json.loads(p.read_text())["records"]) for p in (tmp / "killed").glob("jobs/*/state.json"))
    code, err = tavaal([*argv, "--out", tmp / "killed"])
    assert code == 0, err
    assert _records(tmp / "killed" / "results.jsonl") == _records(tmp / "clean" / "results.jsonl"), (
        "records differ"
    )
    return f"killed after {done} of 16 cycles; resumed to records identical to an uninterrupted run"


PROBES: dict[str, Callable[[Path], str]] = {
    "ENOSPC (tmpfs full) during labels import": probe_enospc_labels,
    "no inodes left during labels import": probe_no_inodes,
    "EFBIG (ulimit -f) during compare": probe_efbig_compare,
    "decode cache on a full disk": probe_full_cache,
    "labels file another user cannot read": probe_unreadable_labels,
    "labels file another user cannot write": probe_unwritable_labels,
    "SIGKILL during compare, then resume": probe_sigkill_compare,
}


def main() -> int:
    held = failed = skipped = 0
    for name, probe in PROBES.items():
        tmp = Path(tempfile.mkdtemp(prefix="tavaal-probe-"))
        try:
            said = probe(tmp)
            held += 1
            print(f"held    {name}: {said}")
        except Skip as e:
            skipped += 1
            print(f"skipped {name}: {e}")
        except AssertionError as e:
            failed += 1
            print(f"FAILED  {name}: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{len(PROBES)} slow probes: {held} held, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
