"""Segmentation: CamVid and Cityscapes layouts on fixtures, joint augmentation, per-image losses,
mIoU, and every registered method on street-scene masks."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import one_cycle, tiny_config
from tavaal.cli import main
from tavaal.data.base import Augment, joint_augment
from tavaal.data.segmentation import load_camvid, load_cityscapes
from tavaal.errors import TavaalError
from tavaal.inference import iou_from_confusion
from tavaal.losses import task_losses
from tavaal.strategies import STRATEGIES, get_strategy

H, W = 24, 32


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _scene(rng, ids):
    """An image whose colour follows its mask (so a network can learn it) and the mask."""
    mask = rng.choice(ids, size=(H, W)).astype(np.uint8)
    mask[: H // 3] = ids[0]  # a "sky" band
    m = mask.astype(np.int64)
    img = np.stack([(m * 23) % 200, (m * 57) % 200, (m * 91) % 200], -1)
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8), mask


@pytest.fixture
def camvid(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "data" / "CamVid"
    for split, n in (("train", 40), ("test", 6)):
        for i in range(n):
            img, mask = _scene(rng, [0, 3, 8, 11])  # sky, road, car, unlabelled
            _png(root / split / f"f{i:03d}.png", img)
            _png(root / f"{split}annot" / f"f{i:03d}.png", mask)
    return tmp_path / "data"


@pytest.fixture
def cityscapes(tmp_path, monkeypatch):
    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    root = tmp_path / "cs"
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            img, mask = _scene(rng, [23, 7, 26, 0])  # sky, road, car, unlabeled
            name = f"aachen_{i:06d}_000019"
            _png(root / "leftImg8bit" / split / "aachen" / f"{name}_leftImg8bit.png", img)
            _png(root / "gtFine" / split / "aachen" / f"{name}_gtFine_labelIds.png", mask)
    return root


def test_camvid_layout_ignores_unlabelled(camvid):
    ds = load_camvid(camvid)
    assert ds.task == "segmentation" and ds.num_classes == 11
    assert tuple(ds.x_train.shape) == (40, 3, H, W) and tuple(ds.y_train.shape) == (40, H, W)
    assert set(torch.unique(ds.y_train).tolist()) == {0, 3, 8, 255}  # 11 -> ignored
    half = load_camvid(camvid, image_size=12)
    assert tuple(half.x_train.shape[2:]) == (12, 16) and set(torch.unique(half.y_train).tolist()) <= {
        0,
        3,
        8,
        255,
    }


def test_cityscapes_layout_maps_label_ids_to_19_classes(cityscapes):
    ds = load_cityscapes(cityscapes)
    assert ds.num_classes == 19 and ds.classes[10] == "sky" and ds.x_test.shape[0] == 2
    # labelIds 23 (sky) -> 10, 7 (road) -> 0, 26 (car) -> 13, 0 (unlabeled) -> 255
    assert set(torch.unique(ds.y_train).tolist()) == {0, 10, 13, 255}


@pytest.mark.parametrize(
    "breakage,needle",
    [
        ("size", "is 16x12 but its image"),
        ("ids", "holds class ids [12] outside the 11 declared classes"),
        ("twin", "has no annotation: expected"),
        ("empty", "the test split under"),
    ],
)
def test_bad_segmentation_folders_are_clear_errors(camvid, capsys, breakage, needle, tmp_path):
    root = camvid / "CamVid"
    if breakage == "size":
        _png(root / "trainannot" / "f001.png", np.zeros((12, 16), np.uint8))
    elif breakage == "ids":
        _png(root / "trainannot" / "f002.png", np.full((H, W), 12, np.uint8))
    elif breakage == "twin":
        (root / "trainannot" / "f003.png").unlink()
    else:
        for p in (root / "test").glob("*.png"):
            p.unlink()
    code = main(
        [
            "run",
            "--preset",
            "camvid-quick",
            "--data-dir",
            str(camvid),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_cityscapes_without_its_data_is_the_missing_data_error(tmp_path, capsys):
    code = main(["run", "--preset", "cityscapes", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2 and "Cityscapes was not found under" in capsys.readouterr().err


def test_joint_augment_moves_image_and_mask_together():
    gen = torch.Generator().manual_seed(0)
    pos = (torch.arange(H)[:, None] * W + torch.arange(W)[None, :]).to(torch.int64)
    x = (pos % 251).to(torch.uint8).expand(5, 3, H, W).clone()
    y = (pos % 251).to(torch.uint8).expand(5, H, W).clone()
    xa, ya = joint_augment(x, y, Augment(flip=True, crop=16), gen)
    assert tuple(xa.shape) == (5, 3, 16, 16) and tuple(ya.shape) == (5, 16, 16)
    assert torch.equal(xa[:, 0], ya) and torch.equal(xa[:, 2], ya)


def test_per_image_loss_is_the_mean_over_pixels_not_ignored():
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 1] = 2.0  # image 0 favours class 1
    y = torch.tensor([[[1, 1], [0, 255]], [[255, 255], [255, 2]]])
    got = task_losses(logits, y)
    p1 = np.exp(2) / (np.exp(2) + 2)  # softmax of class 1 in image 0
    p0 = 1 / (np.exp(2) + 2)
    want0 = (-2 * np.log(p1) - np.log(p0)) / 3  # three labeled pixels
    want1 = np.log(3)  # one labeled pixel, uniform logits
    assert got.tolist() == pytest.approx([want0, want1], rel=1e-6)


def test_iou_from_a_hand_made_confusion_matrix():
    conf = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2 never appears
    iou = iou_from_confusion(conf)
    assert iou[0] == pytest.approx(5 / (5 + 2 + 1)) and iou[1] == pytest.approx(3 / (3 + 1 + 2))
    assert torch.isnan(iou[2])


@pytest.fixture
def camvid_ds(camvid):
    return load_camvid(camvid)


# Methods that are not defined on masks, and what their error says.
NOT_ON_MASKS = {"badge": "badge embeds one label per sample; on segmentation use"}


def _seg_config(**kw):
    base = dict(
        dataset="camvid", model="drn", epochs=1, batch_size=4, initial=8, budget=4, subset_factor=3,
        latent_dim=8, vae_image_size=16, mc_samples=2, eval_batch_size=8, vae_batch_size=4,
    )  # fmt: skip
    return tiny_config("camvid-quick", **{**base, **kw})


@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_every_method_selects_on_segmentation(method, camvid_ds):
    cfg = _seg_config()
    if method in NOT_ON_MASKS:  # refused before any training, naming what to use instead
        with pytest.raises(TavaalError, match=NOT_ON_MASKS[method]):
            one_cycle(cfg, get_strategy(method, cfg), camvid_ds)
        return
    rec, _ = one_cycle(cfg, get_strategy(method, cfg), camvid_ds)
    sel, cand = np.asarray(rec["selected"]), np.asarray(rec["candidates"])
    assert len(set(sel)) == 4 and set(sel) <= set(cand) and not set(sel) & set(rec["initial"])
    assert rec["metric"] == "miou" and 0.0 <= rec["accuracy"] <= 1.0 and len(rec["per_class_iou"]) == 11
    if rec["scores"] is not None:
        assert len(rec["scores"]) == len(cand) == 12 and np.all(np.isfinite(rec["scores"]))
    assert sum(rec["selected_class_counts"]) > 0  # labeled pixels per class


@pytest.mark.parametrize("method", ["tavaal", "mcdropout"])
def test_bf16_reaches_the_segmentation_paths(method, camvid_ds):
    from autocast_spy import AutocastSpy

    cfg = _seg_config(precision="bf16")
    with AutocastSpy() as spy:
        rec, nets = one_cycle(cfg, get_strategy(method, cfg), camvid_ds)
    roles = spy.by_role(nets)
    assert rec["precision"] == "bf16" and roles["model"] and all(roles["model"])  # training, mIoU, MC passes
    assert all(roles.get("vae", [])) and all(roles.get("other", []))


def test_a_segmentation_model_on_class_labels_is_refused(digits):
    with pytest.raises(TavaalError, match=r"\(--model\) drn does not fit digits, which holds class labels"):
        one_cycle(tiny_config("digits", model="drn"), get_strategy("random", tiny_config()), digits)


def _miou_records():
    recs = []
    for t in range(2):
        for c, n in enumerate((20, 40)):
            for m, v in (("random", 0.20 + 0.05 * c), ("tavaal", 0.22 + 0.06 * c + 0.01 * t)):
                recs.append(
                    dict(method=m, trial=t, cycle=c, n_labeled=n, accuracy=v, metric="miou", dataset="camvid")
                )
    return recs


def test_summary_and_report_speak_miou(tmp_path):
    import json

    from tavaal.analysis.report import write_report
    from tavaal.analysis.summary import metric_label, summarize, to_markdown

    recs = _miou_records()
    rows = {(r.method, r.n_labeled): r for r in summarize(recs)}
    # relative improvement (Figure 5): mean over trials of (0.22 + 0.01 t - 0.20) / 0.20 at 20 labels
    assert rows[("tavaal", 20)].rel_mean == pytest.approx(np.mean([0.02 / 0.2, 0.03 / 0.2]))
    md = to_markdown(summarize(recs), metric_label(recs))
    assert md.startswith("mIoU (%), mean ± std") and "Relative improvement over random (%)" in md
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    index = write_report(tmp_path).read_text()
    assert (
        "relative_improvement.png" in index and (tmp_path / "report" / "relative_improvement.png").is_file()
    )
    with pytest.raises(TavaalError, match="mix metrics"):
        metric_label(recs + [dict(recs[0], metric="accuracy")])
