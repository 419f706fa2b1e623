import numpy as np
import torch
from PIL import Image

from ganforge.image import make_grid, save_grid, save_images, save_scatter, to_uint8


def test_to_uint8_maps_the_range_ends():
    x = torch.tensor([-1.0, 0.0, 1.0, 5.0]).view(1, 1, 1, 4)
    assert to_uint8(x).flatten().tolist() == [0, 128, 255, 255]


def test_grid_places_each_image():
    x = torch.stack([torch.full((3, 4, 5), v) for v in (-1.0, 1.0, -1.0)])
    grid = make_grid(x, nrow=2, padding=1, pad_value=7)
    assert grid.shape == (3, 1 + 2 * 5, 1 + 2 * 6)
    assert (grid[:, 1:5, 1:6] == 0).all() and (grid[:, 1:5, 7:12] == 255).all()
    assert (grid[:, 6:10, 7:12] == 7).all()  # the empty fourth cell keeps the pad value
    assert grid[0, 0, 0] == 7


def test_png_round_trip(tmp_path):
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    paths = save_images(x, tmp_path / "imgs")
    back = torch.from_numpy(np.array(Image.open(paths[2]))).permute(2, 0, 1)
    assert torch.equal(back, to_uint8(x)[2])
    grid = Image.open(save_grid(x[:, :1], tmp_path / "g.png"))
    assert grid.mode == "L" and grid.width >= 64  # tiny images are upscaled for viewing
    assert Image.open(save_scatter(torch.randn(100, 2), tmp_path / "s.png")).size == (512, 512)
