import pytest
import torch
from torch import nn

from tavaal.errors import TavaalError
from tavaal.models import MLPVAE, ConvVAE, Discriminator, Ranker, TappedModel, build_task_learner


@pytest.mark.parametrize(
    "name,shape,n_feats,emb",
    [
        ("mlp", (2,), 1, 32),
        ("smallcnn", (1, 8, 8), 3, 128),
        ("tinycnn", (3, 32, 32), 3, 64),
        ("resnet18", (3, 32, 32), 4, 512),
        ("resnet18", (1, 28, 28), 4, 512),
        ("resnet18-imagenet", (3, 64, 64), 4, 512),
    ],
)
def test_task_learner_contract_and_ranker_shapes(name, shape, n_feats, emb):
    model = build_task_learner(name, shape, num_classes=7).eval()
    logits, embedding, feats = model(torch.randn(3, *shape))
    assert logits.shape == (3, 7) and embedding.shape == (3, emb)
    assert len(feats) == n_feats == len(model.feature_dims)
    assert [f.shape[1] for f in feats] == model.feature_dims
    assert Ranker(model.feature_dims)(feats).shape == (3,)


def test_resnet18_cifar_stage_sizes():
    _, _, feats = build_task_learner("resnet18", (3, 32, 32), 10).eval()(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]


def test_tinycnn_stage_sizes():
    _, _, feats = build_task_learner("tinycnn", (3, 32, 32), 10).eval()(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_tapped_user_model():
    user = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    model = TappedModel(user, ["1", "3"], torch.zeros(1, 3, 16, 16), embedding_layer="5")
    logits, emb, feats = model(torch.randn(4, 3, 16, 16))
    assert logits.shape == (4, 5) and emb.shape == (4, 16)
    assert model.feature_dims == [8, 16] and feats[1].shape == (4, 16, 8, 8)
    assert Ranker(model.feature_dims)(feats).shape == (4,)
    with pytest.raises(TavaalError, match="not in the model"):
        TappedModel(user, ["nope"], torch.zeros(1, 3, 16, 16))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_conv_vae_shapes_and_conditioning(shape):
    vae = ConvVAE(shape[0], shape[-1], latent_dim=16, cond_dim=1)
    recon, target, z, mu, logvar = vae(torch.randn(2, *shape), torch.rand(2))
    assert recon.shape == target.shape == (2, shape[0], vae.size, vae.size)
    assert z.shape == mu.shape == logvar.shape == (2, 16)
    assert vae.fc_dec.in_features == 17


def test_without_r_the_model_is_vaal():
    vae, d = ConvVAE(3, 32, 64, cond_dim=0), Discriminator(64, cond_dim=0)
    assert vae.fc_dec.in_features == 64 and d.net[0].in_features == 64
    assert d(torch.randn(5, 64)).shape == (5,)
    assert len([m for m in d.net if isinstance(m, nn.Linear)]) == 5  # section 4.2's 5-layer MLP
    cd = Discriminator(64, cond_dim=1)
    assert cd.net[0].in_features == 65 and cd(torch.randn(5, 64), torch.rand(5)).shape == (5,)
    m = MLPVAE((2,), 4, cond_dim=0)
    assert m.dec[0].in_features == 4 and m(torch.randn(3, 2))[0].shape == (3, 2)
