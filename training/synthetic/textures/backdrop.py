"""The backdrop texture: the wall behind the car with panels, glass, logos, lettering and lights, drawn in metres."""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter, ImageFont

from .surface import Surface, grain

#: Words for the backdrop's large lettering; random letter and digit strings are mixed in.
WORDS = ("AUTO", "CARS", "MOTORS", "SALES", "SERVICE", "CENTER", "GARAGE", "DRIVE", "STUDIO", "PHOTO", "GROUP")


def _contrasting(rng: np.random.Generator, base: list[float]) -> np.ndarray:
    """A colour that stands out from `base`: dark on light walls, light on dark ones, sometimes saturated."""
    light = float(np.mean(base)) > 0.5
    if rng.random() < 0.45:
        hue = rng.uniform(0, 1, 3)
        colour = hue / max(hue.max(), 1e-3) * (rng.uniform(0.4, 0.9) if light else rng.uniform(0.7, 1.0))
        return np.clip(colour, 0, 1)
    return np.full(3, rng.uniform(0.02, 0.3) if light else rng.uniform(0.75, 1.0))


def profile_length(z: float, cove_m: float) -> float:
    """Distance along the cyclorama's profile from the end of the flat floor up to height `z` (cove, then wall)."""
    if z <= cove_m:
        return cove_m * float(np.arccos(1 - z / cove_m)) if cove_m > 0 else 0.0
    return cove_m * np.pi / 2 + (z - cove_m)


def _text(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        return " ".join(rng.choice(WORDS, size=int(rng.integers(1, 3)), replace=False))
    letters = "".join(rng.choice(list(string.ascii_uppercase), size=int(rng.integers(2, 6))))
    return letters + (f" {int(rng.integers(1, 99))}" if rng.random() < 0.4 else "")


def draw_lettering(
    surface: Surface, rng: np.random.Generator, count: int, at: Callable[[float, float], tuple]
) -> None:
    """Large words or letter codes, 0.4-2 m tall, in a colour that stands out from the wall."""
    base = np.mean(surface.rgb, axis=(0, 1))
    for _ in range(count):
        height_px = max(8, int(rng.uniform(0.4, 2.0) * surface.scale))
        font = ImageFont.load_default(size=height_px)
        layer, draw = surface.layer()
        x, y = at(rng.uniform(-6, 3), rng.uniform(0.5, 3.0))
        draw.text(
            (x, y), _text(rng), font=font, fill=255, anchor="ls", stroke_width=int(height_px * rng.uniform(0, 0.06))
        )
        surface.blend(layer, _contrasting(rng, base), alpha=rng.uniform(0.7, 1.0))


def draw_logos(surface: Surface, rng: np.random.Generator, count: int, at: Callable[[float, float], tuple]) -> None:
    """Simple brand-like marks 0.5-2.5 m across: rings, discs, ovals, chevrons and stripes."""
    base = np.mean(surface.rgb, axis=(0, 1))
    for _ in range(count):
        layer, draw = surface.layer()
        cx, cy = at(rng.uniform(-5, 5), rng.uniform(0.8, 3.0))
        r = rng.uniform(0.25, 1.25) * surface.scale
        shape = rng.choice(["ring", "disc", "oval", "chevron", "stripes"])
        if shape in ("ring", "disc", "oval"):
            ry = r * (rng.uniform(0.45, 0.7) if shape == "oval" else 1.0)
            width = int(r * rng.uniform(0.12, 0.3)) if shape != "disc" else 0
            draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=None if width else 255, outline=255, width=width)
        elif shape == "chevron":
            w = r * 0.35
            draw.polygon(
                [
                    (cx - r, cy - r),
                    (cx, cy),
                    (cx - r, cy + r),
                    (cx - r + w, cy + r),
                    (cx + w, cy),
                    (cx - r + w, cy - r),
                ],
                fill=255,
            )
        else:
            for k in range(3):
                draw.rectangle([cx - r, cy - r + k * r * 0.7, cx + r, cy - r + k * r * 0.7 + r * 0.4], fill=255)
        surface.blend(layer, _contrasting(rng, base), alpha=rng.uniform(0.75, 1.0))


def draw_panels(surface: Surface, rng: np.random.Generator, count: int, at: Callable[[float, float], tuple]) -> None:
    """Wall panels: vertical joints every 0.8-3 m with a slightly different tone each, and sometimes a dado band."""
    if count <= 0:
        return
    base = np.mean(surface.rgb, axis=(0, 1))
    width = rng.uniform(0.8, 3.0)
    tones, draw = surface.layer()
    joints, joint_draw = surface.layer()
    left = -surface.width / surface.scale / 2
    for k in range(int(surface.width / surface.scale / width) + 1):
        x0, top = at(left + k * width, 12.0)
        x1, bottom = at(left + (k + 1) * width, 0.0)
        draw.rectangle([x0, top, x1, bottom], fill=int(rng.uniform(0, 255)))
        joint_draw.line([(x0, top), (x0, bottom)], fill=255, width=max(1, int(0.015 * surface.scale)))
    surface.blend(tones, base * rng.uniform(0.75, 0.95), alpha=rng.uniform(0.1, 0.35))
    surface.blend(joints, base * 0.45, alpha=0.6)
    if rng.random() < 0.5:
        band, band_draw = surface.layer()
        x0, top = at(left, rng.uniform(0.6, 1.4))
        x1, bottom = at(-left, 0.0)
        band_draw.rectangle([x0, top, x1, bottom], fill=255)
        surface.blend(band, _contrasting(rng, base) * 0.8 + base * 0.2, alpha=rng.uniform(0.5, 1.0))


def draw_lights(surface: Surface, rng: np.random.Generator, count: int, at: Callable[[float, float], tuple]) -> None:
    """Bright softboxes and strip lights on or in front of the wall, with a glow around each."""
    for _ in range(count):
        layer, draw = surface.layer()
        cx, cy = at(rng.uniform(-6, 6), rng.uniform(1.5, 4.0))
        if rng.random() < 0.5:
            w, h = rng.uniform(0.6, 2.0), rng.uniform(0.6, 1.6)  # softbox
        else:
            w, h = rng.uniform(2.0, 8.0), rng.uniform(0.08, 0.25)  # strip
        draw.rectangle(
            [
                cx - w * surface.scale / 2,
                cy - h * surface.scale / 2,
                cx + w * surface.scale / 2,
                cy + h * surface.scale / 2,
            ],
            fill=255,
        )
        glow = layer.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, 0.5) * surface.scale))
        warm = rng.uniform(-0.06, 0.06)
        colour = np.clip([1.0 + warm, 1.0, 1.0 - warm], 0, 1)
        surface.blend(glow, colour, alpha=rng.uniform(0.3, 0.7))
        surface.blend(layer, colour, alpha=1.0)


def draw_glass(surface: Surface, rng: np.random.Generator, count: int, at: Callable[[float, float], tuple]) -> None:
    """Glass partitions standing on the floor: tinted panes in thin frames, with bright diagonal reflections."""
    for _ in range(count):
        x = rng.uniform(-7, 4)
        width, height = rng.uniform(1.5, 4.5), rng.uniform(2.2, 3.6)
        panes = int(rng.integers(1, 4))
        x0, top = at(x, height)
        x1, bottom = at(x + width, 0.0)
        pane, pane_draw = surface.layer()
        pane_draw.rectangle([x0, top, x1, bottom], fill=255)
        tint = np.clip(np.mean(surface.rgb, axis=(0, 1)) * rng.uniform(0.55, 0.9) * [0.9, 1.0, 1.0], 0, 1)
        surface.blend(pane, tint, alpha=rng.uniform(0.3, 0.6))
        streaks, streak_draw = surface.layer()
        for _ in range(int(rng.integers(1, 4))):
            sx, w = rng.uniform(x0, x1), rng.uniform(0.05, 0.4) * surface.scale
            slant = (bottom - top) * rng.uniform(0.2, 0.6)
            streak_draw.polygon([(sx, top), (sx + w, top), (sx + w - slant, bottom), (sx - slant, bottom)], fill=255)
        streaks = Image.fromarray(np.minimum(np.asarray(streaks), np.asarray(pane)))
        surface.blend(streaks.filter(ImageFilter.GaussianBlur(3)), [1.0, 1.0, 1.0], alpha=rng.uniform(0.2, 0.5))
        frame, frame_draw = surface.layer()
        line = max(1, int(rng.uniform(0.02, 0.06) * surface.scale))
        frame_draw.rectangle([x0, top, x1, bottom], outline=255, width=line)
        for k in range(1, panes):
            xm = x0 + (x1 - x0) * k / panes
            frame_draw.line([(xm, top), (xm, bottom)], fill=255, width=line)
        surface.blend(frame, np.full(3, rng.uniform(0.1, 0.6)), alpha=0.9)


def backdrop_texture(style: dict, width_m: float, cove_m: float, height_m: float, pixels_per_metre: float, seed: int):
    """The wall behind the car (the cyclorama's cove and wall), as seen from the floor's edge upward.

    Args:
        style: `rgb`, `gradient` (light falloff toward the top, 0..1), `grain`, `panels`, `lettering`, `logos`,
            `lights`, `glass` (counts), as drawn by `params.sample_scene_params`.
        width_m: Arc length of the textured wall sector, centred on the camera's view.
        cove_m: The cove's radius (the texture's bottom rows wrap around it).
        height_m: Profile length from the floor's edge to the top of the wall.
        pixels_per_metre: Resolution.
        seed: Seeds the placement of every element.

    Returns:
        An RGB image; columns run along the arc (centre column = straight ahead of the camera), row 0 is the top.
    """
    rng = np.random.default_rng(seed)
    surface = Surface(width_m, height_m, pixels_per_metre, style["rgb"])
    surface.multiply(grain(rng, surface.height, surface.width, style["grain"], cell_px=0.25 * surface.scale))
    rows = np.linspace(1.0, 0.0, surface.height, dtype=np.float32)[:, None]  # 1 at the top
    surface.multiply(np.repeat(1.0 - style["gradient"] * rows, surface.width, axis=1))

    def at(x_m: float, z_m: float) -> tuple[float, float]:
        """Pixel of a point `x_m` metres right of the view's centre, at wall height `z_m`."""
        return surface.px(width_m / 2 + x_m, profile_length(z_m, cove_m))

    draw_panels(surface, rng, style["panels"], at)
    draw_glass(surface, rng, style["glass"], at)
    draw_logos(surface, rng, style["logos"], at)
    draw_lettering(surface, rng, style["lettering"], at)
    draw_lights(surface, rng, style["lights"], at)
    return surface.image()
