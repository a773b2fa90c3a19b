"""Probes, nothing lost: every output is checked against every input as the OS resolves them, before
anything is created; symlinked, read-only and other people's files are handled as promised."""

import os
import stat

import pytest

from probes import QUERY, cli, digest, is_device, refused, write_export, write_labels
from tavaal.errors import TavaalError


def _query(pool, labels, out, *extra):
    return ["query", "--pool", pool, "--labels", labels, "--out", out, *QUERY, *extra]


@pytest.mark.parametrize(
    "out, needle",
    [
        ("newdir/../labels.csv", "is your --labels file"),  # the folder does not exist yet
        ("./labels.csv", "is your --labels file"),
        ("pool/../labels.csv", "is your --labels file"),
        ("link.csv", "is your --labels file"),  # a symlink to the labels file
        ("pool/next.csv", "is inside the pool folder"),  # not an image, but in the user's data
        ("pool/sub/new/next.csv", "is inside the pool folder"),
        ("config.yaml", "is your --config file"),
        ("/dev/null", "is not a regular file"),
        ("pipe", "is not a regular file"),
        (".", "is a folder"),
    ],
)
def test_query_out_is_checked_against_every_input_before_anything_is_created(
    tmp_path, folder_pool, capsys, monkeypatch, out, needle
):
    root, truth, labels = folder_pool
    if out == "/dev/null" and not is_device(out):
        pytest.skip("this machine's /dev/null is not a device (the pipe case covers it)")
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link.csv").symlink_to(labels)
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    before, pool_before = digest(tmp_path / "labels.csv"), digest(root)
    extra = ["--config", "config.yaml"] if out == "config.yaml" else []
    argv = _query("pool", "labels.csv", out, *extra)
    if extra:
        argv.remove("--epochs"), argv.remove("1")
    refused(argv, capsys, needle)
    assert digest(tmp_path / "labels.csv") == before and digest(root) == pool_before
    assert not (tmp_path / "newdir").exists() and not (root / "sub").exists()


def test_the_labels_file_through_a_symlink_is_updated_at_its_target(tmp_path, folder_pool, capsys):
    root, truth, _ = folder_pool
    paths = sorted(truth)
    (tmp_path / "shared").mkdir()
    real = write_labels(tmp_path / "shared" / "labels.csv", [])
    link = tmp_path / "labels.csv.link"
    link.symlink_to(real)
    export = write_export(tmp_path / "e.json", [(paths[0], truth[paths[0]])])
    code, err = cli(["labels", "import-labelstudio", export, "--labels", link, "--pool", root], capsys)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert f"{paths[0]},{truth[paths[0]]}" in real.read_text()


def test_a_read_only_labels_file_is_refused_before_any_work_even_for_root(tmp_path, folder_pool, capsys):
    root, truth, labels = folder_pool
    paths = sorted(truth)
    labels.chmod(0o444)
    before = digest(labels)
    export = write_export(tmp_path / "e.json", [(paths[20], truth[paths[20]])])
    refused(["labels", "import-labelstudio", export, "--labels", labels], capsys, "is read-only")
    assert digest(labels) == before and stat.S_IMODE(labels.stat().st_mode) == 0o444


def test_a_read_only_folder_is_refused_before_training(tmp_path, folder_pool, capsys):
    root, truth, labels = folder_pool
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    refused(_query(root, labels, ro / "next.csv"), capsys, "cannot write in the folder")
    compare = ["compare", "--preset", "moons", "--methods", "random", "--out", ro / "x"]
    refused(compare, capsys, "cannot write")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_an_updated_labels_file_keeps_its_owner_and_mode(tmp_path, folder_pool, capsys):
    root, truth, labels = folder_pool
    paths = sorted(truth)
    os.chown(labels, 1234, 5678)
    labels.chmod(0o640)
    export = write_export(tmp_path / "e.json", [(paths[20], truth[paths[20]])])
    code, err = cli(["labels", "import-labelstudio", export, "--labels", labels], capsys)
    assert code == 0, err
    st = labels.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o640)


def test_the_labels_file_is_not_the_export(tmp_path, folder_pool, capsys):
    root, truth, labels = folder_pool
    export = write_export(tmp_path / "e.json", [])
    before = digest(export)
    refused(["labels", "import-labelstudio", export, "--labels", export], capsys, "is your export")
    assert digest(export) == before


FOLDER_RUN = [
    "compare",
    "--preset",
    "quick",
    "--methods",
    "random",
    "--dataset",
    "imagefolder",
    "--train-dir",
    "{pool}",
]


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([*FOLDER_RUN, "--out", "{pool}/runs"], "inside the --train-dir folder"),
        ([*FOLDER_RUN, "--out", "{tmp}"], "holds the --train-dir folder"),
        (["serve", "--pool", "{pool}", "--state", "{pool}/state"], "inside the pool folder"),
        (["serve", "--pool", "{pool}", "--state", "{tmp}"], "holds the pool folder"),
        (["compare", "--preset", "moons", "--methods", "random", "--out", "{labels}"], "is a file"),
        (["report", "{tmp}", "--out", "/dev/null"], "is a file, not a folder"),
    ],
)  # fmt: skip
def test_output_folders_stay_out_of_the_data(tmp_path, folder_pool, capsys, argv, needle):
    root, truth, labels = folder_pool
    if "/dev/null" in argv and not is_device("/dev/null"):
        pytest.skip("this machine's /dev/null is not a device")
    before = digest(root)
    argv = [a.format(pool=root, tmp=tmp_path, labels=labels) for a in argv]
    refused(argv, capsys, needle)
    assert digest(root) == before and not (root / "state").exists() and not (root / "runs").exists()


def test_an_atomic_write_never_replaces_a_pipe_or_device(tmp_path):
    """A rename over a device or pipe would put a plain file in its place (as root: /dev/null)."""
    from tavaal.atomic import atomic_write_text

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    link = tmp_path / "link"
    link.symlink_to(pipe)
    for target in (pipe, link):
        with pytest.raises(TavaalError, match="is not a regular file"):
            atomic_write_text(target, "x")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and link.is_symlink()
    assert {p.name for p in tmp_path.iterdir()} == {"pipe", "link"}  # no temporary file left
