"""margin, least confidence, BADGE, TypiClust and Core-set: what each selects on a constructed case."""

import numpy as np
import pytest
import torch
from torch import nn

from conftest import cpu_runtime
from tavaal import ActiveLearner
from tavaal.cli import main
from tavaal.config import make_config
from tavaal.data.base import ArrayDataset
from tavaal.errors import TavaalError
from tavaal.strategies import SelectionContext, get_strategy
from tavaal.strategies.badge import gradient_factors, kmeans_pp, sq_distances
from tavaal.strategies.typiclust import typiclust


class Identity(nn.Module):
    """A 'task learner' whose logits (and embedding) are its input rows: scores by construction."""

    def forward(self, x):
        return x, x, [x]


def _ctx(rows):
    x = torch.tensor(rows, dtype=torch.float32)
    y = torch.zeros(len(x), dtype=torch.long)
    ds = ArrayDataset("rows", x, y, x[:1], y[:1], [str(i) for i in range(x.shape[1])])
    return SelectionContext(
        Identity(), None, ds, np.array([], dtype=np.int64), np.arange(len(x)), cpu_runtime()
    )


def test_margin_picks_the_closest_top_two():
    # softmax of these logits: row 2 has its two top classes nearly tied, row 0 is confident.
    ctx = _ctx([[5.0, 0.0, 0.0], [2.0, 1.0, 0.0], [1.0, 0.98, -3.0], [0.0, 3.0, 1.0]])
    sel = get_strategy("margin", make_config("digits")).select(ctx, 2)
    assert sel.indices.tolist() == [2, 1]
    p = torch.softmax(torch.tensor([1.0, 0.98, -3.0]), 0)
    assert sel.scores[2] == pytest.approx(float(p[0] - p[1]), rel=1e-5)


def test_least_confidence_picks_the_lowest_top_probability():
    # Margin and least confidence disagree here: row 1 is nearly flat over three classes (the
    # lowest max, 0.37; margin 0.03), row 0 has two tied classes (margin 0) but a max of 0.5.
    ctx = _ctx([[3.0, 3.0, -9.0], [1.0, 0.8, 0.9], [4.0, 0.0, 0.0]])
    cfg = make_config("digits")
    assert get_strategy("least-confidence", cfg).select(ctx, 1).indices.tolist() == [1]
    assert get_strategy("margin", cfg).select(ctx, 1).indices.tolist() == [0]


def test_badge_distances_need_no_gradient_matrix():
    g = torch.Generator().manual_seed(0)
    a, h = torch.randn(7, 3, generator=g), torch.randn(7, 5, generator=g)
    full = torch.einsum("nc,nd->ncd", a, h).flatten(1)
    for i in (0, 4):
        explicit = ((full - full[i]) ** 2).sum(1)
        assert torch.allclose(sq_distances(a, h, i), explicit, atol=1e-4)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    a, _ = gradient_factors(logits, torch.ones(2, 4))
    p = torch.softmax(logits, 1)
    assert torch.allclose(a, p - torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # p - onehot(prediction)


def test_badge_batch_is_more_spread_than_the_largest_gradients():
    g = torch.Generator().manual_seed(1)
    # 30 candidates whose gradients are large and nearly the same, 30 smaller ones spread out.
    a = torch.cat([torch.tensor([[1.0, -1.0]]).repeat(30, 1), torch.randn(30, 2, generator=g) * 0.5])
    h = torch.cat(
        [torch.ones(30, 4) * 2 + torch.randn(30, 4, generator=g) * 0.01, torch.randn(30, 4, generator=g)]
    )
    k = 6
    badge = kmeans_pp(a, h, k, torch.Generator().manual_seed(0))
    topk = torch.topk((a * a).sum(1) * (h * h).sum(1), k).indices.tolist()

    def spread(idx):
        return float(np.mean([sq_distances(a, h, i)[idx].mean() for i in idx]))

    assert len(set(badge)) == k and spread(badge) > 3 * spread(topk)


def test_typiclust_picks_dense_points_of_uncovered_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    blobs = [c + rng.normal(0, 1.0, (40, 2)) for c in centers]
    cand = np.concatenate(blobs)
    blob_of = np.repeat([0, 1, 2], 40)
    labeled = centers[:1] + 0.1  # blob 0 already holds a label
    picks, typ = typiclust(labeled, cand, budget=2, seed=0, k=10)
    assert sorted(blob_of[picks]) == [1, 2]  # nothing from the covered cluster
    for p in picks:  # each pick is its blob's most typical candidate, near the blob's centre
        members = np.flatnonzero(blob_of == blob_of[p])
        assert typ[p] == typ[members].max()
        assert np.linalg.norm(cand[p] - centers[blob_of[p]]) < 1.0


def test_typiclust_follows_the_authors_loop_on_small_clusters():
    """Their select_samples: clusters of more than 5 points only, round robin in the order (labels
    held, largest first), typicality among the cluster's unlabeled points with k = min(20, n // 2)."""
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    sizes = [30, 12, 5, 6]  # the 5-point cluster is left out by the authors' boundary (> 5)
    cand = np.concatenate([c + rng.normal(0, 0.5, (n, 2)) for c, n in zip(centers, sizes)])
    blob_of = np.repeat(np.arange(4), sizes)
    labeled = np.zeros((0, 2))
    picks, typ = typiclust(labeled, cand, budget=4, seed=0, max_clusters=4)
    # largest first, round robin over the three clusters of more than 5: 30, 12, 6, then 30 again
    assert list(blob_of[picks]) == [0, 1, 3, 0]
    six = np.flatnonzero(blob_of == 3)  # k = min(20, 6 // 2) = 3 among its six points
    d = np.linalg.norm(cand[six][:, None] - cand[six][None], axis=2)
    expect = 1 / (np.sort(d, axis=1)[:, 1:4].mean(axis=1) + 1e-8)
    np.testing.assert_allclose(typ[six], expect, rtol=1e-6)
    assert picks[2] == six[np.argmax(expect)]
    old, _ = typiclust(labeled, cand, budget=4, seed=0, max_clusters=4, rule="whole-cluster")
    assert 2 in set(blob_of[old])  # the former rule takes clusters of 5 and follows the fewest labels


def test_typiclust_with_the_users_embeddings(digits, tmp_path):
    x = digits.x_train[:200].numpy()
    emb = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    with pytest.raises(TavaalError, match=r"one row per pool sample, \(200, dim\)"):
        ActiveLearner("typiclust", "smallcnn", x, embeddings=emb[:10])
    kw = dict(epochs=1, batch_size=16, lr_milestones=[], typiclust_embedding="user")
    learner = ActiveLearner("typiclust", "smallcnn", x, embeddings=emb, **kw)
    learner.label(list(range(20)), digits.y_train[:20].tolist())
    q = learner.query(5)
    assert len(set(q.ids)) == 5 and not set(q.ids) & set(range(20))
    learner.save(tmp_path / "s")
    again = ActiveLearner.load(tmp_path / "s")
    assert torch.equal(again.embeddings.cpu(), torch.from_numpy(emb)) and again.query(5).ids == q.ids
    without = ActiveLearner("typiclust", "smallcnn", x, **kw)
    without.label(list(range(20)), digits.y_train[:20].tolist())
    with pytest.raises(TavaalError, match="needs your embeddings"):
        without.query(5)


def test_coreset_on_the_users_embeddings_is_k_center_greedy_in_that_space(digits):
    x = digits.x_train[:120].numpy()
    emb = np.zeros((120, 2), dtype=np.float32)
    emb[:, 0] = np.arange(120)  # a line: the labeled end is 0..19, so the far end is picked first
    kw = dict(epochs=1, batch_size=16, lr_milestones=[], coreset_embedding="user", subset_size=100)
    learner = ActiveLearner("coreset", "smallcnn", x, embeddings=emb, **kw)
    learner.label(list(range(20)), digits.y_train[:20].tolist())
    assert learner.query(3).ids == [119, 69, 44]  # the far end, then halving the widest gap
    without = ActiveLearner("coreset", "smallcnn", x, **kw)
    without.label(list(range(20)), digits.y_train[:20].tolist())
    with pytest.raises(TavaalError, match="coreset_embedding='user' needs your embeddings"):
        without.query(1)


def test_compare_runs_the_new_methods_and_summarises_them(tmp_path, capsys):
    methods = "random,entropy,margin,least-confidence,badge,typiclust,tavaal"
    args = ["compare", "--preset", "digits", "--methods", methods, "--trials", "1", "--cycles", "2",
            "--epochs", "1", "--initial", "20", "--budget", "10", "--latent-dim", "8", "--quiet",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "o")]) == 0
    head = capsys.readouterr().out.splitlines()[4]
    for m in methods.split(","):
        assert f" {m} " in head


def test_typiclust_on_the_vae_latent(digits):
    x = digits.x_train[:200].numpy()
    kw = dict(
        epochs=1, batch_size=16, lr_milestones=[], typiclust_embedding="vae", vae_epochs=2, latent_dim=8
    )
    picks = []
    for _ in range(2):  # the same seeds give the same picks
        learner = ActiveLearner("typiclust", "smallcnn", x, **kw)
        learner.label(list(range(20)), digits.y_train[:20].tolist())
        q = learner.query(5)
        assert len(set(q.ids)) == 5 and not set(q.ids) & set(range(20))
        assert learner.networks()["selector"].fitted  # the VAE trained for the embedding
        picks.append(q.ids)
    assert picks[0] == picks[1]
    typiclust = get_strategy("typiclust", make_config("digits")).__class__
    with pytest.raises(
        TavaalError, match=r"typiclust_embedding \(--typiclust-embedding\) must be one of task, vae, user"
    ):
        typiclust(typiclust_embedding="simclr")
    with pytest.raises(
        TavaalError, match="typiclust has no setting 'embedding'; its settings are: .*typiclust_k"
    ):
        typiclust(embedding="task")
