import pytest
import torch

from ganforge.data import Loader, load_data, parse_size
from ganforge.data.builtin import FASHION_DEBIAN_DIR, grid25, ring8

needs_fashion = pytest.mark.skipif(not FASHION_DEBIAN_DIR.exists(), reason="dataset-fashion-mnist not installed")


def test_ring8_and_grid25_geometry():
    r = ring8()
    assert r.centers.shape == (8, 2) and r.std == 0.02
    torch.testing.assert_close(r.centers.norm(dim=1), torch.full((8,), 2.0))
    g = grid25()
    assert g.centers.shape == (25, 2) and g.std == 0.05
    assert sorted(set(g.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("name,std", [("ring8", 0.02), ("grid25", 0.05)])
def test_mixture_samples_have_the_stated_std(name, std):
    data = load_data(f"builtin:{name}")
    mix = ring8() if name == "ring8" else grid25()
    nearest = torch.cdist(data.x, mix.centers).argmin(1)
    resid = data.x - mix.centers[nearest]
    assert resid.std().item() == pytest.approx(std, rel=0.02)
    assert data.spec.kind == "points" and data.spec.shape == (2,)


def test_digits():
    d = load_data("builtin:digits")
    assert d.x.shape == (1797, 1, 8, 8) and d.x.dtype == torch.uint8 and d.x.max() == 255
    assert d.spec.n_classes == 10 and d.y.bincount().min() > 150
    d3 = load_data("builtin:digits", size=(16, 16), channels=3)
    assert d3.x.shape == (1797, 3, 16, 16)
    assert torch.equal(d3.x[:, 0], d3.x[:, 2])


@needs_fashion
def test_fashion_mnist_from_the_debian_package():
    d = load_data("builtin:fashion-mnist")
    assert d.x.shape == (60000, 1, 28, 28) and d.spec.n_classes == 10
    assert d.y.bincount().tolist() == [6000] * 10
    d32 = load_data("builtin:fashion-mnist", size=(32, 32), channels=3)
    assert d32.spec.shape == (3, 32, 32)


def test_fashion_mnist_offline_error(monkeypatch, tmp_path):
    import ganforge.data.builtin as b

    monkeypatch.setattr(b, "FASHION_DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(b, "FASHION_URL", "http://127.0.0.1:9/")  # nothing listens: like being offline
    with pytest.raises(RuntimeError, match="apt-get install dataset-fashion-mnist"):
        b.fashion_mnist_file("t10k-labels-idx1-ubyte.gz")


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(ValueError, match="builtin:fashion-mnist, builtin:digits"):
        load_data("builtin:cifar")


def test_parse_size():
    assert parse_size("100") == (100, 100)
    assert parse_size("96x64") == (96, 64)
    assert parse_size(None) is None
    with pytest.raises(ValueError, match="HxW"):
        parse_size("big")
    with pytest.raises(ValueError, match="between 4 and 4096"):
        parse_size("2x2")


def test_loader_visits_every_sample_once_per_epoch_and_resumes_exactly():
    data = load_data("builtin:digits")
    loader = Loader(data.subset(100), batch_size=10, seed=3)
    seen = torch.cat([loader.next_batch().x.flatten(1) for _ in range(10)])
    assert torch.equal(seen.sort(0).values, data.to_float(data.x[:100]).flatten(1).sort(0).values)
    for _ in range(7):
        loader.next_batch()
    state = loader.state_dict()
    expect = [loader.next_batch().x for _ in range(5)]
    other = Loader(data.subset(100), batch_size=10, seed=0)
    other.load_state_dict(state)
    for e in expect:
        assert torch.equal(other.next_batch().x, e)


def test_loader_images_are_in_minus_one_one():
    data = load_data("builtin:digits")
    x = Loader(data, 64, seed=0).next_batch().x
    assert x.dtype == torch.float32 and x.min() == -1.0 and x.max() == 1.0


def test_flip_mirrors_about_half_the_batch_deterministically():
    data = load_data("builtin:digits")
    plain, flipped = Loader(data, 64, seed=4), Loader(data, 64, seed=4, flip=True)
    a, b = plain.next_batch().x, flipped.next_batch().x
    same = (a == b).flatten(1).all(1)
    mirrored = (a.flip(-1) == b).flatten(1).all(1)
    assert bool((same | mirrored).all())  # every image is itself or its mirror image
    strictly = mirrored & ~same  # (a symmetric digit is both)
    assert 16 <= int(strictly.sum()) <= 48
    again = Loader(data, 64, seed=4, flip=True)
    torch.testing.assert_close(again.next_batch().x, b, rtol=0, atol=0)
    two = [Loader(data, 64, seed=4, rank=r, world_size=2, flip=True) for r in range(2)]
    parts = torch.cat([ld.next_batch().x for ld in two])
    assert sorted(map(lambda t: t.flatten().tolist(), parts)) == sorted(map(lambda t: t.flatten().tolist(), b))
    with pytest.raises(ValueError, match="not images"):
        Loader(load_data("builtin:ring8"), 8, flip=True)


def test_the_registry_names_every_builtin_and_nothing_imports_it_back():
    import ast
    from pathlib import Path

    import ganforge.data.builtin as b
    from ganforge.data.registry import BUILTINS, builtin_names

    assert {"fashion-mnist", "digits", "ring8", "grid25", "fmnist-edges2items", "emoji-lowres"} <= set(BUILTINS)
    assert "builtin:fmnist-pair:P,Q" in builtin_names()
    folder = Path(b.__file__).parent
    for name, banned in (("builtin.py", {"translation", "registry"}), ("translation.py", {"registry"})):
        tree = ast.parse((folder / name).read_text())
        found = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert not found & banned, f"data/{name} imports {found & banned}: a cycle through the registry"
