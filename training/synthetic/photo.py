"""From a render to a photograph: background photo, floor reflection, cast shadows, then camera processing.

Everything here works on image arrays after the render and changes only the pixels it is told to: shadows and
reflections touch the floor outside the car's mask, the background fills what the render left empty. The mask is
never changed, so it stays the exact car. Needs only numpy and Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .camera import light_direction, project

#: The contact shadow under a car on a photograph: straight down, from its parts below this height (metres).
CONTACT_SHADOW_TOP = 0.6
#: ... spread this much wider than the car's footprint (light creeps in less under the car's edges).
CONTACT_SHADOW_SPREAD = 1.08


@dataclass
class ViewLayers:
    """One rendered view, before it becomes a photo (made by `render.render_layers`).

    Attributes:
        rgb: `(height, width, 3)` uint8 colour pass.
        mask: `(height, width)` uint8 0/1, the exact car (SEG pass).
        floor: `(height, width)` bool, the floor and turntable pixels (not car), where shadows and reflections fall.
        reflection: `(height, width, 3)` uint8 render of the car mirrored in the floor, or None.
        reflection_mask: `(height, width)` bool, where the mirrored car is, or None.
    """

    rgb: np.ndarray
    mask: np.ndarray
    floor: np.ndarray
    reflection: np.ndarray | None = None
    reflection_mask: np.ndarray | None = None


def compose(
    layers: ViewLayers,
    style: dict,
    car_points: np.ndarray,
    pose: np.ndarray,
    yfov: float,
    background: np.ndarray | None = None,
    ground_z: float = 0.0,
) -> np.ndarray:
    """Turn a rendered view into the scene's image: background photo, floor reflection, cast and contact shadows.

    Args:
        layers: The rendered view.
        style: The car's `scene` parameters (`params.sample_scene_params`): `setting`, `reflection`,
            `cast_shadows`.
        car_points: `(n, 3)` world points of the car as posed in this view (they cast the shadows).
        pose: Camera-to-world pose.
        yfov: Vertical field of view in radians.
        background: `(height, width, 3)` uint8 photograph, required in the "photo" setting.
        ground_z: Height of the ground the car stands on.

    Returns:
        `(height, width, 3)` float image in 0..255. Car pixels (the mask) are the render's, unchanged.

    Raises:
        ValueError: If the photo setting has no background, or it does not match the render's size.
    """
    rgb = layers.rgb.astype(np.float32)
    mask = layers.mask.astype(bool)
    height, width = mask.shape
    shadows = list(style.get("cast_shadows") or [])
    if style.get("setting") == "photo":
        if background is None or background.shape[:2] != (height, width):
            got = None if background is None else background.shape
            raise ValueError(f"the photo setting needs a ({height}, {width}, 3) background image, got {got}")
        rgb = composite_background(rgb, mask, background)
        receiver = ~mask
        low = car_points[car_points[:, 2] < ground_z + CONTACT_SHADOW_TOP]
        centre = low.mean(axis=0) * [1, 1, 0]
        spread = centre + (low - centre) * [CONTACT_SHADOW_SPREAD, CONTACT_SHADOW_SPREAD, 1]
        shadows.append(
            {"azimuth_deg": 0.0, "elevation_deg": 90.0, "darkness": 0.6, "softness": 0.012, "points": spread}
        )
    else:
        receiver = layers.floor & ~mask
    reflection = style.get("reflection")
    if reflection and layers.reflection is not None:
        blur = reflection["blur"] * width
        rgb = add_reflection(rgb, layers.reflection, layers.reflection_mask, receiver, reflection["strength"], blur)
    for shadow in shadows:
        points = shadow.get("points", car_points)
        outline = ground_shadow(points, shadow["azimuth_deg"], shadow["elevation_deg"], ground_z)
        rgb = cast_shadow(rgb, receiver, outline, pose, yfov, shadow["darkness"], shadow["softness"] * width)
    return rgb


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull of 2-D points, counter-clockwise, without repeating the first point (Andrew's monotone chain).

    Args:
        points: `(n, 2)`.

    Returns:
        `(k, 2)` hull corners.
    """
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return pts

    def half(sequence: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in sequence:
            while len(chain) >= 2 and np.cross(chain[-1] - chain[-2], p - chain[-2]) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def ground_shadow(points: np.ndarray, azimuth_deg: float, elevation_deg: float, ground_z: float = 0.0) -> np.ndarray:
    """The outline of the shadow that a distant light casts of `points` onto the plane `z = ground_z`.

    Args:
        points: `(n, 3)` world points of the car.
        azimuth_deg: The light's azimuth (`camera.light_direction`).
        elevation_deg: The light's elevation above the horizon, > 0.
        ground_z: Height of the receiving plane.

    Returns:
        `(k, 3)` world points of the shadow's convex outline on the plane.
    """
    toward = light_direction(azimuth_deg, max(elevation_deg, 1.0))
    along = np.clip(points[:, 2] - ground_z, 0.0, None) / toward[2]  # points on or below the ground stay put
    footprint = points[:, :2] - along[:, None] * toward[:2]  # (n, 2)
    outline = convex_hull(footprint)
    return np.column_stack([outline, np.full(len(outline), ground_z)])


def polygon_coverage(polygon_px: np.ndarray, width: int, height: int, blur_px: float) -> np.ndarray:
    """A polygon in pixel coordinates, filled and blurred: `(height, width)` float32 coverage in 0..1."""
    layer = Image.new("L", (width, height), 0)
    if len(polygon_px) >= 3:
        ImageDraw.Draw(layer).polygon([tuple(p) for p in polygon_px], fill=255)
    if blur_px > 0.3:
        layer = layer.filter(ImageFilter.GaussianBlur(blur_px))
    return np.asarray(layer, dtype=np.float32) / 255.0


def cast_shadow(
    rgb: np.ndarray,
    receiver: np.ndarray,
    outline_world: np.ndarray,
    pose: np.ndarray,
    yfov: float,
    darkness: float,
    blur_px: float,
) -> np.ndarray:
    """Darken the receiving pixels inside a ground shadow seen through the camera.

    Args:
        rgb: `(height, width, 3)` float image.
        receiver: `(height, width)` bool, the pixels that can take the shadow (floor, not car).
        outline_world: `(k, 3)` the shadow's outline on the ground (`ground_shadow`).
        pose: Camera-to-world pose; `yfov`: its vertical field of view in radians.
        yfov: Vertical field of view in radians.
        darkness: 0 (none) .. 1 (black) at the shadow's core.
        blur_px: Softness, the Gaussian blur in pixels.

    Returns:
        The darkened image (a new array); pixels outside `receiver` are unchanged.
    """
    height, width = receiver.shape
    uvz = project(outline_world, pose, yfov, width, height)
    if (uvz[:, 2] <= 0.05).any():  # part of the shadow behind the camera: clip by skipping
        uvz = uvz[uvz[:, 2] > 0.05]
    coverage = polygon_coverage(uvz[:, :2], width, height, blur_px) * receiver
    return rgb * (1.0 - darkness * coverage)[:, :, None]


def add_reflection(
    rgb: np.ndarray,
    reflection: np.ndarray,
    reflection_mask: np.ndarray,
    receiver: np.ndarray,
    strength: float,
    blur_px: float,
) -> np.ndarray:
    """Blend the mirrored car into the receiving (floor) pixels, like a glossy floor.

    Args:
        rgb: `(height, width, 3)` float image in 0..255.
        reflection: `(height, width, 3)` render (0..255) of the car mirrored in the floor.
        reflection_mask: `(height, width)` bool, where the mirrored car is.
        receiver: `(height, width)` bool, the pixels that can show it (floor, not car).
        strength: Blend weight of the reflection, 0..1.
        blur_px: Gaussian blur of the reflection (a rougher floor blurs more).

    Returns:
        The new image; pixels outside `receiver` are unchanged.
    """
    weight = Image.fromarray(reflection_mask.astype(np.uint8) * 255)
    if blur_px > 0.3:
        reflection = _blur(reflection, blur_px)
        weight = weight.filter(ImageFilter.GaussianBlur(blur_px))
    weight = (strength * np.asarray(weight, dtype=np.float32) / 255.0 * receiver)[:, :, None]
    return rgb * (1 - weight) + reflection * weight


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an RGB image in 0..255 (through 8 bits: Pillow blurs no float images)."""
    image = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)


def _motion_blur(rgb: np.ndarray, length_px: float, angle_deg: float) -> np.ndarray:
    """Average of the image shifted along a line of `length_px` pixels (camera shake), edges clamped."""
    steps = max(2, int(np.ceil(length_px)))
    height, width = rgb.shape[:2]
    direction = np.array([np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))])
    total = np.zeros_like(rgb)
    rows, cols = np.arange(height), np.arange(width)
    for offset in np.linspace(-length_px / 2, length_px / 2, steps):
        dx, dy = np.rint(direction * offset).astype(int)
        total += rgb[np.clip(rows - dy, 0, height - 1)][:, np.clip(cols - dx, 0, width - 1)]
    return total / steps


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def develop(rgb: np.ndarray, image: dict) -> np.ndarray:
    """Exposure, white balance and vignetting in linear light, then blur: float `(h, w, 3)` in 0..255 out.

    Args:
        rgb: `(height, width, 3)` uint8 or float in 0..255.
        image: `exposure_stops`, `white_balance` (RGB gains), `vignette` (darkening at the corners, 0..1) and `blur`
            (`kind`, `size` as a fraction of the width, `angle_deg`), from `params.sample_image_params`.
    """
    height, width = rgb.shape[:2]
    linear = _to_linear(np.asarray(rgb, dtype=np.float32) / 255.0)
    gain = (2.0 ** image.get("exposure_stops", 0.0)) * np.asarray(image.get("white_balance", [1, 1, 1]))
    linear = linear * gain.astype(np.float32)
    if image.get("vignette", 0.0) > 0:
        y, x = np.ogrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
        linear = linear * (1.0 - image["vignette"] * np.clip((x**2 + y**2) / 2, 0, 1))[:, :, None]
    out = _to_srgb(linear).astype(np.float32) * 255.0
    blur = image.get("blur", {"kind": "none"})
    if blur["kind"] == "gaussian":
        out = _blur(out, blur["size"] * width)
    elif blur["kind"] == "motion":
        out = _motion_blur(out, blur["size"] * width, blur["angle_deg"])
    return out


def finish_photo(rgb: np.ndarray, image: dict, rng: np.random.Generator) -> Image.Image:
    """Develop a render (`develop`) and add sensor noise (Gaussian, in 0-255 units); JPEG happens when saving.

    Args:
        rgb: `(height, width, 3)` uint8 or float in 0..255.
        image: The view's `image` parameters (`params.sample_image_params`); `noise_sigma` is required.
        rng: Draws the noise.
    """
    developed = develop(rgb, image)
    noisy = developed + rng.normal(0.0, image["noise_sigma"], developed.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def composite_background(rgb: np.ndarray, coverage: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Put the render over a background photo: the background wherever the render drew nothing.

    Args:
        rgb: `(height, width, 3)` render.
        coverage: `(height, width)` bool, the pixels the render drew (the car).
        background: `(height, width, 3)` uint8 photo.

    Returns:
        Float `(height, width, 3)` in 0..255.
    """
    return np.where(coverage[:, :, None], np.asarray(rgb, dtype=np.float32), np.asarray(background, np.float32))
