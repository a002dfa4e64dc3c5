"""Floor and turntable textures: base colour, grain, seams, stains, tyre marks and scuffs, drawn in metres."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .surface import Surface, grain


def draw_stains(surface: Surface, rng: np.random.Generator, count: int, region: tuple[float, ...]) -> None:
    """Irregular blobs (oil, water, dust) of 0.15-1 m inside `region` = (x0, y0, x1, y1) metres."""
    for _ in range(count):
        layer, draw = surface.layer()
        cx, cy = rng.uniform(region[0], region[2]), rng.uniform(region[1], region[3])
        size = rng.uniform(0.15, 1.0)
        for _ in range(int(rng.integers(2, 9))):
            ox, oy = rng.normal(0, size / 3, 2)
            rx, ry = size * rng.uniform(0.2, 0.6, 2)
            x0, y0 = surface.px(cx + ox - rx, cy + oy + ry)
            x1, y1 = surface.px(cx + ox + rx, cy + oy - ry)
            draw.ellipse([x0, y0, x1, y1], fill=255)
        layer = layer.filter(ImageFilter.GaussianBlur(size * surface.scale * rng.uniform(0.01, 0.08)))
        kind = rng.choice(["oil", "water", "dust"], p=[0.5, 0.3, 0.2])
        colour = {
            "oil": [0.08, 0.07, 0.06],
            "water": np.mean(surface.rgb, axis=(0, 1)) * 0.7,
            "dust": [0.8, 0.78, 0.72],
        }
        surface.blend(layer, colour[kind], alpha=rng.uniform(0.1, 0.4))


def draw_tyre_marks(surface: Surface, rng: np.random.Generator, count: int, region: tuple[float, ...]) -> None:
    """Pairs of dark curved tracks 1.5-1.7 m apart and 0.15-0.25 m wide, as left by a car driving across."""
    for _ in range(count):
        layer, draw = surface.layer()
        start = np.array([rng.uniform(region[0], region[2]), rng.uniform(region[1], region[3])])
        heading, turn = rng.uniform(0, 2 * np.pi), rng.uniform(-0.25, 0.25)
        length, track, width = rng.uniform(2.0, 8.0), rng.uniform(1.5, 1.7), rng.uniform(0.15, 0.25)
        steps = np.linspace(0, 1, 24)
        angles = heading + turn * steps * length / 2
        centre = start + np.cumsum(np.stack([np.cos(angles), np.sin(angles)], 1) * length / len(steps), axis=0)
        normal = np.stack([-np.sin(angles), np.cos(angles)], 1)
        for side in (-0.5, 0.5):
            points = centre + normal * side * track
            draw.line([surface.px(*p) for p in points], fill=255, width=max(1, int(width * surface.scale)))
        layer = layer.filter(ImageFilter.GaussianBlur(0.02 * surface.scale))
        surface.blend(layer, [0.04, 0.04, 0.045], alpha=rng.uniform(0.08, 0.35))


def draw_scuffs(surface: Surface, rng: np.random.Generator, count: int, region: tuple[float, ...]) -> None:
    """Short thin strokes, 0.1-0.6 m long, darker or lighter than the floor."""
    dark, light = surface.layer(), surface.layer()
    for _ in range(count):
        layer, draw = dark if rng.random() < 0.7 else light
        x, y = rng.uniform(region[0], region[2]), rng.uniform(region[1], region[3])
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.1, 0.6)
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line(
            [surface.px(x, y), surface.px(*end)], fill=255, width=max(1, int(rng.uniform(0.005, 0.03) * surface.scale))
        )
    surface.blend(dark[0].filter(ImageFilter.GaussianBlur(1)), [0.1, 0.1, 0.1], alpha=0.45)
    surface.blend(light[0].filter(ImageFilter.GaussianBlur(1)), [0.9, 0.9, 0.88], alpha=0.35)


def draw_seams(surface: Surface, rng: np.random.Generator, kind: str, spacing_m: float) -> None:
    """Floor joints: "tiles" (a grid, each tile a slightly different tone), "planks" (long boards) or "none"."""
    if kind == "none":
        return
    width_m, height_m = surface.width / surface.scale, surface.height_m
    across = spacing_m * (rng.uniform(3, 6) if kind == "planks" else 1.0)
    tones = surface.layer()
    for i in range(int(width_m / across) + 1):
        for j in range(int(height_m / spacing_m) + 1):
            shift = (j % 2) * across / 2 if kind == "planks" else 0.0
            x0, y0 = surface.px(i * across + shift, (j + 1) * spacing_m)
            x1, y1 = surface.px((i + 1) * across + shift, j * spacing_m)
            tones[1].rectangle([x0, y0, x1, y1], fill=int(rng.uniform(0, 255)))
    surface.blend(tones[0], np.mean(surface.rgb, axis=(0, 1)) * 0.8, alpha=0.12)
    lines, draw = surface.layer()
    line_px = max(1, int(0.008 * surface.scale))
    for j in range(int(height_m / spacing_m) + 1):
        draw.line([surface.px(0, j * spacing_m), surface.px(width_m, j * spacing_m)], fill=255, width=line_px)
    if kind == "tiles":
        for i in range(int(width_m / across) + 1):
            draw.line([surface.px(i * across, 0), surface.px(i * across, height_m)], fill=255, width=line_px)
    surface.blend(lines, [0.12, 0.12, 0.12], alpha=rng.uniform(0.25, 0.6))


def floor_texture(style: dict, size_m: float, pixels: int, seed: int) -> Image.Image:
    """A square floor texture: base colour, grain, seams, stains, tyre marks and scuffs.

    Args:
        style: `rgb`, `grain`, `seams` ("none", "tiles", "planks"), `seam_spacing_m`, `stains`, `tyre_marks`,
            `scuffs` (counts), as drawn by `params.sample_scene_params`.
        size_m: Side of the square in metres.
        pixels: Side in pixels.
        seed: Seeds the placement of every mark.

    Returns:
        An RGB image; u runs along x (columns), v along y (row 0 is the far +y edge, as OpenGL samples it flipped).
    """
    rng = np.random.default_rng(seed)
    surface = Surface(size_m, size_m, pixels / size_m, style["rgb"])
    surface.multiply(grain(rng, surface.height, surface.width, style["grain"], cell_px=0.3 * surface.scale))
    draw_seams(surface, rng, style["seams"], style["seam_spacing_m"])
    region = (0.15 * size_m, 0.15 * size_m, 0.85 * size_m, 0.85 * size_m)
    draw_stains(surface, rng, style["stains"], region)
    draw_tyre_marks(surface, rng, style["tyre_marks"], region)
    draw_scuffs(surface, rng, style["scuffs"], region)
    return surface.image()


def turntable_texture(style: dict, radius_m: float, pixels: int, seed: int) -> Image.Image:
    """The turntable's top: its grey, grain, a ring near the rim, radial segment joints, stains, tyre marks, scuffs.

    Args:
        style: `grey`, `grain`, `segments` (radial joints, 0 for none), `stains`, `tyre_marks`, `scuffs`.
        radius_m: Turntable radius; the texture spans `[-radius, radius]^2`.
        pixels: Side in pixels.
        seed: Seeds the placement of every mark.
    """
    rng = np.random.default_rng(seed)
    size = 2 * radius_m
    surface = Surface(size, size, pixels / size, [style["grey"]] * 3)
    surface.multiply(grain(rng, surface.height, surface.width, style["grain"], cell_px=0.2 * surface.scale))
    lines, draw = surface.layer()
    line_px = max(1, int(0.01 * surface.scale))
    ring = radius_m * rng.uniform(0.85, 0.97)
    draw.ellipse(
        [*surface.px(radius_m - ring, radius_m + ring), *surface.px(radius_m + ring, radius_m - ring)],
        outline=255,
        width=line_px,
    )
    for k in range(style["segments"]):
        angle = 2 * np.pi * k / max(1, style["segments"])
        end = (radius_m + radius_m * np.cos(angle), radius_m + radius_m * np.sin(angle))
        draw.line([surface.px(radius_m, radius_m), surface.px(*end)], fill=255, width=line_px)
    surface.blend(lines, [0.1, 0.1, 0.1], alpha=rng.uniform(0.2, 0.5))
    region = (0.2 * size, 0.2 * size, 0.8 * size, 0.8 * size)
    draw_stains(surface, rng, style["stains"], region)
    draw_tyre_marks(surface, rng, style["tyre_marks"], region)
    draw_scuffs(surface, rng, style["scuffs"], region)
    return surface.image()
