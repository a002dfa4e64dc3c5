"""Overlay colours at known pixels and 0/255 mask PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carseg_hf.image_io import load_mask
from carseg_hf.overlay import (
    FN_COLOR,
    FP_COLOR,
    TP_COLOR,
    error_overlay,
    legend_swatch_html,
    mask_overlay,
    save_mask_png,
)


def grey_image(value: int = 100) -> np.ndarray:
    return np.full((2, 2, 3), value, dtype=np.uint8)


def test_error_overlay_colours_at_known_pixels():
    pred = np.array([[1, 1], [0, 0]], dtype=np.uint8)
    target = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    out = error_overlay(grey_image(), pred, target, alpha=1.0)
    assert tuple(out[0, 0]) == FP_COLOR
    assert tuple(out[0, 1]) == TP_COLOR
    assert tuple(out[1, 0]) == FN_COLOR
    assert tuple(out[1, 1]) == (100, 100, 100)  # true negative keeps the image


def test_error_overlay_blends_with_alpha():
    pred = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    target = np.zeros((2, 2), dtype=np.uint8)
    out = error_overlay(grey_image(100), pred * 255, target, alpha=0.5)
    assert tuple(out[0, 0]) == (178, 50, 50)  # (100 + 255) / 2 rounded, 100 / 2
    assert tuple(out[1, 1]) == (100, 100, 100)


def test_error_overlay_rejects_shape_mismatch_and_alpha():
    with pytest.raises(ValueError, match=r"prediction of shape \(3, 2\)"):
        error_overlay(grey_image(), np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        error_overlay(grey_image(), np.zeros((2, 2)), np.zeros((2, 2)), alpha=1.5)


def test_mask_overlay():
    mask = np.array([[1, 0], [0, 0]], dtype=bool)
    out = mask_overlay(grey_image(0), mask, color=(10, 20, 30), alpha=1.0)
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[0, 1]) == (0, 0, 0)


def test_save_mask_png_is_0_255(tmp_path):
    mask = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    path = save_mask_png(mask, tmp_path / "sub" / "m.png")
    with Image.open(path) as image:
        assert image.mode == "L"
        assert sorted(np.unique(np.asarray(image)).tolist()) == [0, 255]
    np.testing.assert_array_equal(load_mask(path), mask)


def test_mask_gif_keeps_carvana_indices_0_and_1(tmp_path):
    from carseg_hf.image_io import ImageDecodeError, load_mask
    from carseg_hf.overlay import save_mask_gif

    mask = np.zeros((6, 9), dtype=bool)
    mask[2:5, 3:7] = True
    path = save_mask_gif(mask, tmp_path / "sub" / "a_mask.gif")
    with Image.open(path) as gif:
        assert gif.mode == "P" and gif.getpalette()[:6] == [0, 0, 0, 255, 255, 255]
        assert np.array_equal(np.asarray(gif), mask.astype(np.uint8))
    assert np.array_equal(load_mask(path), mask.astype(np.uint8))
    with pytest.raises(ImageDecodeError):
        save_mask_gif(np.full((4, 4), 128, dtype=np.uint8), tmp_path / "bad.gif")


def test_legend_swatch_html_default_and_inline_styles():
    assert legend_swatch_html((1, 2, 3), "a") == (
        '<span class="key"><span class="box" style="background:rgb(1,2,3)"></span>a</span>'
    )
    inline = legend_swatch_html((255, 0, 0), "b", entry_attributes='style="x"', box_attributes='style="c:{rgb}"')
    assert inline == '<span style="x"><span style="c:rgb(255,0,0)"></span>b</span>'
