import torch

from tavaal.data import load_dataset
from tavaal.data.base import ArrayDataset, Augment, random_crop, random_flip


def test_moons_is_the_papers_toy_problem(moons):
    y = moons.y_train.numpy()
    assert moons.x_train.shape == (550, 2) and (y == 0).sum() == 500 and (y == 1).sum() == 50
    assert moons.x_test.shape == (550, 2)
    assert not torch.equal(moons.x_train, moons.x_test)  # drawn with another seed


def test_digits_split_is_fixed(digits):
    again = load_dataset("digits")
    assert digits.x_train.shape[0] + digits.x_test.shape[0] == 1797
    assert digits.x_train.dtype == torch.uint8 and digits.input_shape == (1, 8, 8)
    assert torch.equal(digits.y_train, again.y_train)


def test_random_crop_is_a_crop_of_the_padded_image():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5) + 1
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        found = any(
            torch.equal(out[i], padded[i, :, oy : oy + 5, ox : ox + 5]) for oy in range(5) for ox in range(5)
        )
        assert found


def test_random_flip_flips_some_and_keeps_others():
    x = torch.randn(64, 1, 4, 4)
    out = random_flip(x, torch.Generator().manual_seed(0))
    same = [torch.equal(out[i], x[i]) for i in range(64)]
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(64)]
    assert all(s or f for s, f in zip(same, flipped)) and 10 < sum(flipped) < 54


def test_batch_normalises_with_train_stats():
    x = torch.full((4, 1, 2, 2), 255, dtype=torch.uint8)
    ds = ArrayDataset(
        "t",
        x,
        torch.zeros(4, dtype=torch.long),
        x,
        torch.zeros(4, dtype=torch.long),
        ["a"],
        (0.5,),
        (0.25,),
        Augment(),
    )
    assert torch.allclose(ds.batch(torch.arange(2), train=False), torch.full((2, 1, 2, 2), 2.0))
