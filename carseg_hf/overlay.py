"""Visualising masks: error overlays (false positive / true positive / false negative), mask tints, mask PNGs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .image_io import load_rgb, normalize_mask

#: Predicted car where there is none (false positive).
FP_COLOR = (255, 0, 0)
#: Car predicted where there is car (true positive).
TP_COLOR = (0, 255, 0)
#: Car missed (false negative).
FN_COLOR = (0, 0, 255)
#: Tint of the predicted car in prediction overlays (amber: distinct from the error colours above).
PREDICTION_COLOR = (255, 176, 0)
#: Weight of that tint.
PREDICTION_ALPHA = 0.5


def legend_swatch_html(
    color: tuple[int, int, int],
    label: str,
    entry_attributes: str = 'class="key"',
    box_attributes: str = 'class="box" style="background:{rgb}"',
) -> str:
    """One entry of a colour legend as HTML: a square in `color`, then its label.

    The evaluation report (`carseg evaluate`) styles the entry with its page's `.key` and `.box` classes (the
    defaults); the demo, whose page has no such classes, passes inline styles.

    Args:
        color: RGB colour of the square, e.g. `FP_COLOR`.
        label: The text after the square (inserted as is: pass HTML-safe text).
        entry_attributes: Attributes of the entry's outer `<span>`.
        box_attributes: Attributes of the square's `<span>`; `{rgb}` in them becomes the colour as `rgb(r,g,b)`.

    Returns:
        `<span ENTRY><span BOX></span>LABEL</span>`.
    """
    rgb = "rgb({},{},{})".format(*color)
    return f"<span {entry_attributes}><span {box_attributes.replace('{rgb}', rgb)}></span>{label}</span>"


def _as_bool_mask(mask: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{name} of shape {mask.shape} does not match the image's (height, width) {shape}")
    return mask != 0


def _blend(image: np.ndarray, where: np.ndarray, color: tuple[int, int, int], alpha: float) -> None:
    """Blend `color` over `image` in place where `where` is set."""
    pixels = image[where].astype(np.float32)  # (pixels, 3)
    image[where] = np.clip((1.0 - alpha) * pixels + alpha * np.asarray(color, np.float32) + 0.5, 0, 255)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")


def error_overlay(image: np.ndarray, pred: Any, target: Any, alpha: float = 0.5) -> np.ndarray:
    """Colour the errors of a prediction over its image.

    False positives are blended in red (`FP_COLOR`), true positives in green (`TP_COLOR`) and false negatives in
    blue (`FN_COLOR`); true-negative pixels keep the image unchanged.

    Args:
        image: The photo, `(height, width, 3)` uint8 (anything `image_io.load_rgb` accepts works).
        pred: Predicted mask `(height, width)`; nonzero is car.
        target: Ground-truth mask `(height, width)`; nonzero is car.
        alpha: Weight of the colour in the blend, in [0, 1].

    Returns:
        A new `(height, width, 3)` uint8 array.

    Raises:
        ValueError: If a mask's shape differs from the image's or alpha is out of range.
    """
    _check_alpha(alpha)
    out = load_rgb(image).copy()  # (height, width, 3) uint8
    shape = out.shape[:2]
    pred = _as_bool_mask(pred, shape, "prediction")
    target = _as_bool_mask(target, shape, "target")
    _blend(out, pred & ~target, FP_COLOR, alpha)
    _blend(out, pred & target, TP_COLOR, alpha)
    _blend(out, ~pred & target, FN_COLOR, alpha)
    return out


def mask_overlay(
    image: np.ndarray, mask: Any, color: tuple[int, int, int] = (0, 200, 255), alpha: float = 0.5
) -> np.ndarray:
    """Tint the masked pixels of an image.

    Args:
        image: The photo, `(height, width, 3)` uint8.
        mask: `(height, width)` mask; nonzero is car.
        color: RGB tint.
        alpha: Weight of the colour in the blend, in [0, 1].

    Returns:
        A new `(height, width, 3)` uint8 array.
    """
    _check_alpha(alpha)
    out = load_rgb(image).copy()  # (height, width, 3) uint8
    _blend(out, _as_bool_mask(mask, out.shape[:2], "mask"), color, alpha)
    return out


def prediction_overlay(image: Any, mask: Any) -> np.ndarray:
    """The photo with the predicted car tinted in `PREDICTION_COLOR`, as the demo and `carseg predict --overlay` show.

    Args:
        image: The photo, `(height, width, 3)` uint8 (anything `image_io.load_rgb` accepts works).
        mask: `(height, width)` predicted mask; nonzero is car.

    Returns:
        A new `(height, width, 3)` uint8 array.
    """
    return mask_overlay(image, mask, color=PREDICTION_COLOR, alpha=PREDICTION_ALPHA)


def save_mask_png(mask: Any, path: str | os.PathLike) -> Path:
    """Save a binary mask as an 8-bit greyscale ("L") PNG with values 0 and 255.

    A mask saved with values 0/1 is technically correct but looks all black in image viewers (1 of 255 is
    almost black), a frequent source of "my predicted masks are empty" reports; 0/255 is visible and every
    carseg reader (`image_io.load_mask`) turns it back into 0/1.

    Args:
        mask: `(height, width)` mask as 0/1, bool or 0/255 (array or tensor).
        path: Output file; parent folders are created.

    Returns:
        The path written.

    Raises:
        ImageDecodeError: If the mask is not 2-D or not binary.
    """
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    binary = normalize_mask(np.asarray(mask), name=f"mask for {os.fspath(path)!r}")  # (height, width) 0/1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((binary * 255).astype(np.uint8)).save(path)  # 2-D uint8 -> mode "L"
    return path


def mask_gif_image(mask: Any) -> Image.Image:
    """A binary mask as Carvana's `train_masks` store it: a palette ("P") image with indices 0 and 1.

    Args:
        mask: `(height, width)` mask as 0/1, bool or 0/255 (array or tensor).

    Returns:
        The palette image: index 0 black (background), index 1 white (car).

    Raises:
        ImageDecodeError: If the mask is not 2-D or not binary.
    """
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    binary = normalize_mask(np.asarray(mask), name="mask")  # (height, width) 0/1
    image = Image.fromarray(binary.astype(np.uint8), mode="L").convert("P")  # indices 0/1
    image.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
    return image


def save_mask_gif(mask: Any, path: str | os.PathLike) -> Path:
    """Save a binary mask as a palette GIF with indices 0/1, the format of Carvana's `train_masks`.

    Args:
        mask: `(height, width)` mask as 0/1, bool or 0/255 (array or tensor).
        path: Output file; parent folders are created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mask_gif_image(mask).save(path, format="GIF", optimize=False)  # optimize could renumber the palette
    return path
