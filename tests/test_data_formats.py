"""Tiny fixtures in each real on-disk layout, loaded through the product's loaders."""

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from tavaal.data import DataSpec, load_data, load_dataset
from tavaal.data import cache as cache_mod
from tavaal.data.imbalance import imbalanced_indices
from tavaal.data.vision import load_caltech101, load_imagefolder
from tavaal.errors import TavaalError

R = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def no_md5(monkeypatch):
    """Fixtures cannot match the real archives' MD5 sums that torchvision checks."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(datasets.SVHN, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)


def _write_cifar10(root, n=20):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    data = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = R.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [i % 10 for i in range(n)]
        with open(d / name, "wb") as f:
            pickle.dump({"data": x, "labels": y}, f)
        data[name] = (x, y)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    return data, names


def test_cifar10_pickles(tmp_path, no_md5):
    data, names = _write_cifar10(tmp_path)
    ds = load_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (20, 3, 32, 32) and ds.classes == names
    x0 = data["data_batch_1"][0][0].reshape(3, 32, 32)
    assert np.array_equal(ds.x_train[0].numpy(), x0) and ds.y_train[:10].tolist() == list(range(10))
    assert len(ds.mean) == 3 and ds.augment.pad == 2 and ds.augment.flip


def test_cifar100_pickles(tmp_path, no_md5):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name, n in (("train", 30), ("test", 10)):
        with open(d / name, "wb") as f:
            pickle.dump(
                {
                    "data": R.integers(0, 256, (n, 3072), dtype=np.uint8),
                    "fine_labels": [i % 100 for i in range(n)],
                },
                f,
            )
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    ds = load_dataset("cifar100", data_dir=str(tmp_path))
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.num_classes == 100 and ds.y_train[29] == 29


def test_imbalanced_cifar10_counts(tmp_path, no_md5):
    _write_cifar10(tmp_path, n=200)  # 100 per class in the training set
    ds = load_dataset("cifar10-imb10", data_dir=str(tmp_path))
    counts = np.bincount(ds.y_train.numpy(), minlength=10)
    assert counts.tolist() == [10] * 5 + [100] * 5
    assert counts[5:].sum() / counts[:5].sum() == 10
    assert ds.x_test.shape[0] == 200  # test set untouched
    official = load_dataset("cifar10-imb10", data_dir=str(tmp_path), imbalance_pattern="official")
    assert np.bincount(official.y_train.numpy()).tolist() == [10, 100] * 5  # even classes reduced


def test_official_imbalance_keeps_the_first_samples_of_the_even_classes():
    # The authors' code: [50, 5000] * 5 zipped with classes 0..9, each class_idx[:count].
    y = np.tile(np.arange(10), 5000)  # classes interleaved, as in a shuffled file
    keep = imbalanced_indices(y, 100, pattern="official")
    assert np.bincount(y[keep]).tolist() == [50, 5000] * 5
    for c in (0, 2, 4, 6, 8):
        assert np.array_equal(keep[y[keep] == c], np.flatnonzero(y == c)[:50])
    assert np.array_equal(keep, imbalanced_indices(y, 100, pattern="official", seed=7))  # no randomness


def test_imbalance_is_seeded_and_exact():
    y = np.repeat(np.arange(10), 5000)
    keep = imbalanced_indices(y, 100)
    assert np.bincount(y[keep]).tolist() == [50] * 5 + [5000] * 5
    assert np.array_equal(keep, imbalanced_indices(y, 100))
    assert not np.array_equal(keep, imbalanced_indices(y, 100, seed=1))


def test_svhn_mat(tmp_path, no_md5):
    from scipy.io import savemat

    for split, n in (("train", 12), ("test", 6)):
        x = R.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10 if i % 10 == 0 else i % 10] for i in range(n)], dtype=np.uint8)
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
    ds = load_dataset("svhn", data_dir=str(tmp_path))
    assert ds.x_train.shape == (12, 3, 32, 32) and ds.y_train[:3].tolist() == [0, 1, 2]
    assert not ds.augment.flip


def _idx(path, arr, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes())


def test_fashionmnist_idx(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 16), ("t10k", 8)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", R.integers(0, 256, (n, 28, 28), dtype=np.uint8), 2051)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8), 2049)
    ds = load_dataset("fashionmnist", data_dir=str(tmp_path))
    assert ds.x_train.shape == (16, 1, 28, 28) and ds.classes[0] == "T-shirt/top" and ds.y_train[3] == 3


def _jpegs(root, classes, per_class, size=(12, 10)):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = R.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"image_{i + 1:04d}.jpg")


def test_imagefolder_jpegs_and_decode_once(tmp_path, monkeypatch):
    _jpegs(tmp_path / "train", ["cat", "dog"], 3, (16, 16))
    _jpegs(tmp_path / "test", ["cat", "dog"], 2, (20, 12))
    calls = []
    real = cache_mod.decode_image
    monkeypatch.setattr(cache_mod, "decode_image", lambda p, s: calls.append(p) or real(p, s))
    ds = load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"))
    assert ds.x_train.shape == (6, 3, 16, 16) and ds.x_test.shape == (4, 3, 16, 16)
    assert ds.classes == ["cat", "dog"] and ds.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(calls) == 10
    again = load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"))
    assert len(calls) == 10 and torch.equal(again.x_train, ds.x_train)  # second load decodes nothing
    (tmp_path / "train" / "cat" / "image_0001.jpg").touch()  # a changed file invalidates its set's cache
    load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"))
    assert len(calls) == 16


def test_imagefolder_errors(tmp_path):
    _jpegs(tmp_path / "train", ["a", "b"], 1)
    _jpegs(tmp_path / "test", ["a"], 1)
    with pytest.raises(TavaalError, match="class folders differ"):
        load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TavaalError, match="no images found"):
        load_imagefolder(str(tmp_path / "empty"), str(tmp_path / "test"))


def test_an_image_folder_is_imbalanced_as_section_4_3_and_keeps_its_test_set(tmp_path):
    classes = ["a", "b", "c", "d"]
    _jpegs(tmp_path / "train", classes, 10)
    _jpegs(tmp_path / "test", classes, 3)
    spec = dict(dataset="imagefolder", train_dir=str(tmp_path / "train"), test_dir=str(tmp_path / "test"))
    ds = load_data(DataSpec(**spec, imbalance_ratio=5))
    assert np.bincount(ds.y_train.numpy()).tolist() == [2, 2, 10, 10]  # the first half reduced x5
    assert ds.name.endswith("-imb5") and ds.x_test.shape[0] == 12  # the test set is not reduced
    whole = load_data(DataSpec(**spec))
    kept = [whole.x_train[i] for i in imbalanced_indices(whole.y_train.numpy(), 5)]
    assert torch.equal(ds.x_train, torch.stack(kept))  # the paper's random choice, seeded
    official = load_data(DataSpec(**spec, imbalance_ratio=5, imbalance_pattern="official"))
    assert np.bincount(official.y_train.numpy()).tolist() == [2, 10, 2, 10]


def test_imbalance_ratio_refuses_what_it_cannot_mean(tmp_path, no_md5):
    with pytest.raises(TavaalError, match="1 \\(as loaded\\) or more"):
        DataSpec(imbalance_ratio=0)
    _write_cifar10(tmp_path, n=20)
    with pytest.raises(TavaalError, match="already imbalanced; for another ratio use --dataset cifar10"):
        load_data(DataSpec(dataset="cifar10-imb10", data_dir=str(tmp_path), imbalance_ratio=100))


def test_caltech101_folders(tmp_path):
    folder = tmp_path / "caltech101" / "101_ObjectCategories"
    _jpegs(folder, ["BACKGROUND_Google", "accordion", "airplanes"], 4, (30, 20))
    ds = load_caltech101(tmp_path, download=False, image_size=32, test_size=3)
    assert ds.x_train.shape == (9, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.classes == ["BACKGROUND_Google", "accordion", "airplanes"]
    assert ds.augment.pad == 0 and ds.augment.flip


def test_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(TavaalError, match=f"not found under {tmp_path}.*--download"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    with pytest.raises(TavaalError, match="101_ObjectCategories"):
        load_dataset("caltech101", data_dir=str(tmp_path))


def test_truncated_jpeg_is_named_and_can_be_skipped_with_a_warning(tmp_path, caplog, capsys):
    _jpegs(tmp_path / "train", ["cat", "dog"], 3, (16, 16))
    _jpegs(tmp_path / "test", ["cat", "dog"], 1, (16, 16))
    bad = tmp_path / "train" / "dog" / "image_0002.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated, as an interrupted copy leaves it
    with pytest.raises(
        TavaalError, match=r"1 image file\(s\) cannot be read: .*dog/image_0002.jpg.*--skip-unreadable"
    ):
        load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"))
    with caplog.at_level("WARNING", logger="tavaal"):
        ds = load_imagefolder(str(tmp_path / "train"), str(tmp_path / "test"), skip_unreadable=True)
    assert ds.x_train.shape[0] == 5 and ds.y_train.tolist() == [0, 0, 0, 1, 1]
    assert "left out 1 unreadable image(s)" in caplog.text and "image_0002.jpg" in caplog.text
    from tavaal.cli import main

    argv = [
        "run",
        "--dataset",
        "imagefolder",
        "--train-dir",
        str(tmp_path / "train"),
        "--test-dir",
        str(tmp_path / "test"),
        "--model",
        "smallcnn",
        "--initial",
        "2",
        "--budget",
        "1",
        "--cycles",
        "1",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "image_0002.jpg" in err and "Traceback" not in err
    assert main([*argv, "--skip-unreadable"]) == 0
