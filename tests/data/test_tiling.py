from __future__ import annotations

import numpy as np
import pytest
import torch

from satdifuser.data.tiling import (
    crop_array,
    grid_windows,
    random_window,
    sliding_window_predict,
    window_starts,
)
from satdifuser.errors import ConfigError, InputShapeError


def test_window_starts_cover_and_end_flush() -> None:
    assert window_starts(100, 32, 32) == [0, 32, 64, 68]
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(20, 32, 16) == [0]


def test_grid_windows_cover_every_pixel() -> None:
    cover = np.zeros((70, 45), dtype=int)
    for y, x in grid_windows(70, 45, 16, 12):
        cover[y : y + 16, x : x + 16] += 1
    assert cover.min() >= 1


def test_random_window_stays_inside_and_is_seeded() -> None:
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    pts = [random_window(50, 40, 16, g1) for _ in range(50)]
    assert pts == [random_window(50, 40, 16, g2) for _ in range(50)]
    assert all(0 <= y <= 34 and 0 <= x <= 24 for y, x in pts)
    assert len(set(pts)) > 10


def test_crop_array_pads_small_images() -> None:
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    c = crop_array(a, 0, 0, 5, 255)
    assert c.shape == (5, 5) and (c[:3, :4] == a).all() and (c[3:] == 255).all()


def test_sliding_window_identity_reproduces_image() -> None:
    img = torch.rand(3, 37, 53)
    out = sliding_window_predict(lambda t: t * 2.0, img, window=16, overlap=0.5, num_classes=3)
    assert out.shape == (3, 37, 53)
    torch.testing.assert_close(out, img * 2.0)


def test_sliding_window_averages_overlapping_logits() -> None:
    # fn returns, for every window, a constant equal to the window's x offset in the image
    # (read from a coordinate channel), so overlap pixels must hold the mean of their windows
    h, w, win = 8, 24, 8
    img = torch.zeros(1, h, w)
    img[0] = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)

    def fn(t: torch.Tensor) -> torch.Tensor:
        x0 = t[:, 0, 0, 0].reshape(-1, 1, 1, 1)
        return x0.expand(-1, 1, win, win).clone()

    out = sliding_window_predict(fn, img, window=win, overlap=0.5)
    # windows start at x = 0, 4, 8, 12, 16; pixel x=5 is covered by windows 0 and 4
    assert float(out[0, 0, 5]) == pytest.approx(2.0)
    assert float(out[0, 0, 0]) == pytest.approx(0.0)
    assert float(out[0, 0, 23]) == pytest.approx(16.0)
    # pixel 13 is covered by windows starting at 8 and 12
    assert float(out[0, 0, 13]) == pytest.approx(10.0)


def test_sliding_window_small_image_and_batch_dim() -> None:
    img = torch.rand(2, 3, 10, 12)
    calls: list[tuple[int, ...]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t[:, :2]

    out = sliding_window_predict(fn, img, window=16, overlap=0.25)
    assert out.shape == (2, 2, 10, 12) and calls == [(2, 3, 16, 16)]
    torch.testing.assert_close(out, img[:, :2])


def test_sliding_window_resizes_low_resolution_logits() -> None:
    out = sliding_window_predict(lambda t: torch.ones(t.shape[0], 4, 4, 4), torch.rand(3, 20, 20),
                                 window=16, overlap=0.5)  # fmt: skip
    assert out.shape == (4, 20, 20) and torch.allclose(out, torch.ones(1))


def test_sliding_window_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"overlap=1\.0"):
        sliding_window_predict(lambda t: t, torch.rand(3, 8, 8), window=4, overlap=1.0)
    with pytest.raises(InputShapeError, match="num_classes=5"):
        sliding_window_predict(lambda t: t, torch.rand(3, 8, 8), window=4, num_classes=5)
    with pytest.raises(InputShapeError, match="expected"):
        sliding_window_predict(lambda t: t, torch.rand(8, 8), window=4)
