"""Procedural studio textures: backdrops with lettering, logos, panels, lights and glass; floors with marks.

Everything is drawn in metres on the surface and turned into pixels at the end, so a mark has the same real size at
any texture resolution. Each function takes the style chosen in `params.sample_scene_params` (JSON-serialisable
counts and colours) and a seed for the details (where each stain or letter goes), so a texture is reproducible from
the metadata. These surfaces are never car: the SEG pass draws them as background whatever they show.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: Words for the backdrop's large lettering; random letter and digit strings are mixed in.
WORDS = ("AUTO", "CARS", "MOTORS", "SALES", "SERVICE", "CENTER", "GARAGE", "DRIVE", "STUDIO", "PHOTO", "GROUP")


class Surface:
    """A texture being drawn: a float RGB array in 0..1 and the metres-to-pixels mapping.

    Args:
        width_m: Surface width in metres (texture u from 0 to 1).
        height_m: Surface height in metres (texture v from 0 at the bottom to 1 at the top).
        pixels_per_metre: Resolution.
        rgb: Base colour, 0..1.
    """

    def __init__(self, width_m: float, height_m: float, pixels_per_metre: float, rgb: list[float]) -> None:
        self.scale = pixels_per_metre
        self.width = max(8, int(round(width_m * pixels_per_metre)))
        self.height = max(8, int(round(height_m * pixels_per_metre)))
        self.height_m = height_m
        self.rgb = np.ones((self.height, self.width, 3), dtype=np.float32) * np.asarray(rgb, dtype=np.float32)

    def px(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Pixel position of a point given in metres from the bottom-left corner (row 0 is the top edge)."""
        return x_m * self.scale, (self.height_m - y_m) * self.scale

    def layer(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        """A blank 8-bit coverage layer of the texture's size, and a drawing context on it."""
        image = Image.new("L", (self.width, self.height), 0)
        return image, ImageDraw.Draw(image)

    def blend(self, coverage: Image.Image, rgb: list[float] | np.ndarray, alpha: float = 1.0) -> None:
        """Paint `rgb` where the layer is drawn, with `alpha` times the layer's coverage."""
        weight = np.asarray(coverage, dtype=np.float32)[:, :, None] * (alpha / 255.0)  # (height, width, 1)
        self.rgb = self.rgb * (1 - weight) + np.asarray(rgb, dtype=np.float32) * weight

    def multiply(self, factor: np.ndarray) -> None:
        """Multiply by a `(height, width)` or `(height, width, 3)` factor (shading, grain)."""
        self.rgb = self.rgb * (factor[:, :, None] if factor.ndim == 2 else factor)

    def image(self) -> Image.Image:
        """The texture as an 8-bit RGB image."""
        return Image.fromarray((np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8))


def grain(rng: np.random.Generator, height: int, width: int, strength: float, cell_px: float) -> np.ndarray:
    """Multiplicative noise around 1 (concrete, paint, dust): a faint large-scale mottle plus finer speckle.

    Args:
        rng: Draws the noise.
        height: Rows.
        width: Columns.
        strength: Standard deviation of the result around 1, roughly.
        cell_px: Size of the mottle's cells in pixels (the speckle is 8 times finer).

    Returns:
        `(height, width)` float32.
    """
    field = np.zeros((height, width), dtype=np.float32)
    for cell, weight in ((cell_px, 0.6), (cell_px / 8, 0.6), (1.0, 0.4)):
        shape = (max(2, int(height / max(cell, 1.0))), max(2, int(width / max(cell, 1.0))))
        small = Image.fromarray(rng.normal(0.0, 1.0, shape).astype(np.float32))
        field += weight * np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    return 1.0 + strength * field


def _varied(rng: np.random.Generator, rgb: list[float], spread: float) -> np.ndarray:
    return np.clip(np.asarray(rgb) * rng.uniform(1 - spread, 1 + spread) + rng.normal(0, spread / 3, 3), 0, 1)


def _contrasting(rng: np.random.Generator, base: list[float]) -> np.ndarray:
    """A colour that stands out from `base`: dark on light walls, light on dark ones, sometimes saturated."""
    light = float(np.mean(base)) > 0.5
    if rng.random() < 0.45:
        hue = rng.uniform(0, 1, 3)
        colour = hue / max(hue.max(), 1e-3) * (rng.uniform(0.4, 0.9) if light else rng.uniform(0.7, 1.0))
        return np.clip(colour, 0, 1)
    return np.full(3, rng.uniform(0.02, 0.3) if light else rng.uniform(0.75, 1.0))


# --- floors and turntables -------------------------------------------------------------------------------------


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


# --- backdrops --------------------------------------------------------------------------------------------------


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
