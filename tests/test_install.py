"""scripts/install.sh on a machine without an NVIDIA GPU: PyTorch's CPU build first, the default
wheel with one line when its index cannot be used. pip and python are stand-ins that record what
they were asked (nothing is downloaded)."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "install.sh"
FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$CALLS"
case "$*" in
  "-c import torch") exit 1 ;;                       # torch is not installed yet
  "-c import torch, torchvision") [ "$PAIR_BROKEN" = 1 ] && exit 1 ;;   # the final pair imports?
  *--index-url*) [ "$CPU_INDEX_WORKS" = 1 ] || exit 1 ;;   # the CPU index: reachable or not
  "-c import sys, torch, torchvision;"*) [ "$CPU_INDEX_WORKS" = 1 ] || exit 1 ;;   # a CPU pair installed?
esac
exit 0
"""


def _exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _install(
    tmp_path: Path, works: bool, pair_broken: bool = False
) -> tuple[subprocess.CompletedProcess, list]:
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "install.sh")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    _exe(tmp_path / ".venv" / "bin" / "python", FAKE_PYTHON)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _exe(bin_dir / "nvidia-smi", "#!/bin/sh\nexit 1\n")  # no GPU
    calls = tmp_path / "calls.txt"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "CPU_INDEX_WORKS": "1" if works else "0",
        "PAIR_BROKEN": "1" if pair_broken else "0",
        "TAVAAL_TORCH_CPU_INDEX": "http://127.0.0.1:9/cpu",
    }
    env.pop("TORCH_SPEC", None)
    r = subprocess.run(["bash", "scripts/install.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    return r, calls.read_text().splitlines()


@pytest.mark.parametrize("works", [True, False])
def test_without_a_gpu_the_cpu_build_comes_first_and_its_failure_is_one_line(tmp_path, works):
    r, lines = _install(tmp_path, works)
    assert r.returncode == 0, r.stderr
    cpu = [c for c in lines if "--index-url http://127.0.0.1:9/cpu" in c]
    assert len(cpu) == 1 and "torch>=2.1" in cpu[0]
    assert any(
        c.endswith("install -q torch>=2.1 torchvision>=0.16") for c in lines
    )  # satisfied, or the default
    note = [x for x in r.stderr.splitlines() if x.startswith("tavaal install:")]
    assert len(note) == 1
    if works:
        assert "installed PyTorch's CPU build from http://127.0.0.1:9/cpu" in note[0]
    else:
        assert "CPU build could not be had from http://127.0.0.1:9/cpu: installing the default" in note[0]
    # A CPU torch beside another build's torchvision (a wheel cache answering for the index) is
    # removed before the default install, so the two cannot be left unmatched.
    removed = [i for i, c in enumerate(lines) if "uninstall -q -y torch torchvision" in c]
    if works:
        assert removed == []
    else:
        default = max(i for i, c in enumerate(lines) if c.endswith("install -q torch>=2.1 torchvision>=0.16"))
        assert len(removed) == 1 and removed[0] < default


def test_a_torch_and_torchvision_that_do_not_import_together_fail_the_install_with_the_fix(tmp_path):
    r, _ = _install(tmp_path, works=False, pair_broken=True)
    assert r.returncode == 1
    assert "do not import together" in r.stderr and "TORCH_SPEC=" in r.stderr
