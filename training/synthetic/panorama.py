"""HDRI panoramas as backgrounds: reading an EXR, a pinhole view out of an equirectangular panorama, tone mapping."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def read_panorama(path: str) -> np.ndarray:
    """Read an RGB EXR panorama as linear float32 `(height, width, 3)`, NaN and negatives set to 0 (read-only).

    Raises:
        ImportError: If the `openexr` package is missing (it comes with the `synth` extra).
        ValueError: If the file has no RGB channels.
    """
    try:
        import OpenEXR
    except ImportError as error:
        raise ImportError(
            "reading the HDRI panoramas needs the `openexr` package: pip install -e '.[synth]'"
        ) from error
    with OpenEXR.File(path) as exr:
        channels = exr.channels()
        if "RGB" in channels:
            pixels = channels["RGB"].pixels
        elif all(c in channels for c in "RGB"):
            pixels = np.stack([channels[c].pixels for c in "RGB"], axis=-1)
        else:
            raise ValueError(f"{path}: expected R, G, B channels, found {sorted(channels)}")
    hdr = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(0.0, None)
    hdr.setflags(write=False)
    return hdr


def tone_map(hdr: np.ndarray, exposure: float = 1.0, key: float = 0.18) -> np.ndarray:
    """Map linear HDR radiance to 8-bit sRGB: exposure normalised on the log-average luminance, then Reinhard.

    Args:
        hdr: `(..., 3)` linear float radiance.
        exposure: Multiplier on top of the automatic exposure (2.0 is one stop brighter).
        key: The grey level that the log-average luminance maps to before the curve.

    Returns:
        `(..., 3)` uint8 sRGB.
    """
    luminance = hdr @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    log_average = float(np.exp(np.mean(np.log(luminance + 1e-4))))
    scaled = hdr * (key * exposure / max(log_average, 1e-6))
    mapped = scaled / (1.0 + scaled)
    srgb = np.where(mapped <= 0.0031308, 12.92 * mapped, 1.055 * np.power(mapped, 1 / 2.4) - 0.055)
    return (np.clip(srgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def perspective_view(
    panorama: np.ndarray, width: int, height: int, yaw_deg: float = 0.0, pitch_deg: float = 0.0, yfov_deg: float = 60.0
) -> np.ndarray:
    """A pinhole view out of an equirectangular panorama, bilinearly sampled.

    Args:
        panorama: `(rows, cols, channels)`; column 0 is longitude -180 degrees, row 0 the zenith.
        width: Output width in pixels.
        height: Output height in pixels.
        yaw_deg: Viewing direction's longitude (0 = the panorama's centre column).
        pitch_deg: Elevation of the viewing direction (positive looks up).
        yfov_deg: Vertical field of view.

    Returns:
        `(height, width, channels)`, the panorama's dtype as float32.
    """
    focal = 0.5 * height / np.tan(np.radians(yfov_deg) / 2)
    xs = (np.arange(width) - (width - 1) / 2) / focal
    ys = ((height - 1) / 2 - np.arange(height)) / focal
    x, y = np.meshgrid(xs, ys)  # camera frame: x right, y up, z forward
    pitch, yaw = np.radians(pitch_deg), np.radians(yaw_deg)
    forward_y = y * np.cos(pitch) + np.sin(pitch)
    forward_z = np.cos(pitch) - y * np.sin(pitch)
    longitude = np.arctan2(x, forward_z) + yaw
    latitude = np.arctan2(forward_y, np.hypot(x, forward_z))
    rows, cols = panorama.shape[:2]
    u = ((longitude / (2 * np.pi) + 0.5) % 1.0) * cols - 0.5
    v = (0.5 - latitude / np.pi) * rows - 0.5
    return _bilinear(panorama, u, v)


def _bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample `image` at float pixel coordinates, wrapping around horizontally and clamping vertically."""
    rows, cols = image.shape[:2]
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    c0, c1 = u0 % cols, (u0 + 1) % cols
    r0, r1 = np.clip(v0, 0, rows - 1), np.clip(v0 + 1, 0, rows - 1)
    top = image[r0, c0] * (1 - fu) + image[r0, c1] * fu
    bottom = image[r1, c0] * (1 - fu) + image[r1, c1] * fu
    return (top * (1 - fv) + bottom * fv).astype(np.float32)
