"""builtin:clipart:CATEGORY (data/clipart.py): a category tree of PNGs, composited on white, fitted without crop."""

import os

import numpy as np
import pytest
from PIL import Image

from ganforge.data import load_builtin, load_data
from ganforge.data.images import SkippedImagesWarning


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "png"
    cat = root / "vehicles"
    (cat / "cars").mkdir(parents=True)
    (root / "animals").mkdir()
    # 11 drawings: a red 20x10 box on transparency, in sub-folders too
    for i in range(11):
        im = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
        im.paste((200, 10, 10, 255), (10, 5, 30, 15))
        im.save((cat / "cars" if i % 2 else cat) / f"d{i:02d}.png")
    os.symlink(cat / "d00.png", cat / "cars" / "link_to_d00.png")  # the same drawing twice: counted once
    (cat / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (cat / "notes.txt").write_text("not an image")
    monkeypatch.setenv("GANFORGE_CLIPART", str(root))
    return root


@pytest.mark.filterwarnings("ignore::ganforge.data.images.SkippedImagesWarning")
def test_clipart_category_composited_on_white_and_fitted_whole(tree):
    with pytest.warns(SkippedImagesWarning, match="1 unreadable"):
        train = load_data("builtin:clipart:vehicles", size=(16, 16))
    test = load_builtin("clipart:vehicles", size=(16, 16), split="test")
    assert len(train) + len(test) == 11 and len(test) == 1  # every 10th drawing held out; the link not counted
    assert train.spec.shape == (3, 16, 16) and train.y is None
    x = train.x[0].numpy()
    # a 40x20 drawing fitted into 16x16 is 16x8, centred: 4 white rows above and below
    assert (x[:, :4] == 255).all() and (x[:, -4:] == 255).all()
    # transparency became white; the box kept its colour (red dominates in its middle)
    mid = x[:, 8, 8]
    assert mid[0] > 150 and mid[1] < 80 and mid[2] < 80
    assert (x[:, 8, 0] == 255).all()  # the transparent margin left and right of the box


@pytest.mark.filterwarnings("ignore::ganforge.data.images.SkippedImagesWarning")
def test_clipart_second_load_reads_the_cache(tree, monkeypatch):
    first = load_data("builtin:clipart:vehicles", size=(8, 8))
    import ganforge.data.clipart as clipart

    monkeypatch.setattr(clipart, "_decode", lambda *a: pytest.fail("decoded again instead of reading the cache"))
    again = load_data("builtin:clipart:vehicles", size=(8, 8))
    np.testing.assert_array_equal(first.x.numpy(), again.x.numpy())


def test_clipart_unknown_category_lists_the_real_ones(tree):
    with pytest.raises(ValueError, match="animals, vehicles"):
        load_data("builtin:clipart:spaceships")
