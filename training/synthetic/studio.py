"""Studio geometry: a bright cyclorama (floor curving up into a wall), and a turntable with a baked contact shadow.

pyrender does not draw alpha-blended materials, so the soft shadow is baked into the turntable's opaque texture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.spatial import ConvexHull

from .meshes import CarModel

TURNTABLE_RADIUS = 3.3
TURNTABLE_HEIGHT = 0.03
CYCLORAMA_RADIUS = 13.0
CYCLORAMA_COVE = 2.5
CYCLORAMA_HEIGHT = 12.0


def cyclorama(sections: int = 96, cove_steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A surface of revolution: floor out to the cove, a quarter-circle cove, then a vertical wall; faces inward.

    Returns:
        `(positions, normals)`, unindexed triangles, each `(corners, 3)` float32.
    """
    floor_end = CYCLORAMA_RADIUS - CYCLORAMA_COVE
    profile = [(0.0, 0.0, 0.0, 1.0), (floor_end * 0.5, 0.0, 0.0, 1.0), (floor_end, 0.0, 0.0, 1.0)]  # r, z, nr, nz
    for k in range(1, cove_steps + 1):
        a = k / cove_steps * np.pi / 2
        profile.append(
            (floor_end + CYCLORAMA_COVE * np.sin(a), CYCLORAMA_COVE * (1 - np.cos(a)), -np.sin(a), np.cos(a))
        )
    profile.append((CYCLORAMA_RADIUS, CYCLORAMA_HEIGHT, -1.0, 0.0))
    angles = np.linspace(0, 2 * np.pi, sections + 1)
    positions, normals = [], []

    def vertex(j: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        r, z, nr, nz = profile[j]
        c, s = np.cos(angles[i]), np.sin(angles[i])
        return np.array([r * c, r * s, z]), np.array([nr * c, nr * s, nz])

    for j in range(len(profile) - 1):
        for i in range(sections):
            a, b, c, d = vertex(j, i), vertex(j, i + 1), vertex(j + 1, i + 1), vertex(j + 1, i)
            for tri in ((a, b, c), (a, c, d)):
                positions += [v[0] for v in tri]
                normals += [v[1] for v in tri]
    return np.asarray(positions, dtype=np.float32), np.asarray(normals, dtype=np.float32)


def turntable(sections: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The turntable's top disc and rim, with UVs mapping `[-R, R]^2` onto the shadow texture.

    Returns:
        `(positions, normals, uvs)`, unindexed triangles.
    """
    radius, height = TURNTABLE_RADIUS, TURNTABLE_HEIGHT
    angles = np.linspace(0, 2 * np.pi, sections + 1)
    positions, normals, uvs = [], [], []
    for i in range(sections):
        c0, s0, c1, s1 = np.cos(angles[i]), np.sin(angles[i]), np.cos(angles[i + 1]), np.sin(angles[i + 1])
        top = [
            np.array([0, 0, height]),
            np.array([radius * c0, radius * s0, height]),
            np.array([radius * c1, radius * s1, height]),
        ]
        positions += top
        normals += [np.array([0.0, 0.0, 1.0])] * 3
        uvs += [(p[0] / (2 * radius) + 0.5, p[1] / (2 * radius) + 0.5) for p in top]
        side = [
            np.array([radius * c0, radius * s0, 0.0]),
            np.array([radius * c1, radius * s1, 0.0]),
            np.array([radius * c1, radius * s1, height]),
            np.array([radius * c0, radius * s0, height]),
        ]
        n0, n1 = np.array([c0, s0, 0.0]), np.array([c1, s1, 0.0])
        positions += [side[0], side[1], side[2], side[0], side[2], side[3]]
        normals += [n0, n1, n1, n0, n1, n0]
        uvs += [(0.5, 0.999)] * 6  # the texture's edge row: plain grey
    return (
        np.asarray(positions, dtype=np.float32),
        np.asarray(normals, dtype=np.float32),
        np.asarray(uvs, dtype=np.float32),
    )


def shadow_texture(car: CarModel, grey: float, shadow: dict, size: int = 512) -> Image.Image:
    """The turntable's texture in the car frame: plain grey with a soft contact shadow under the car.

    The shadow is the blurred plan-view hull of the car's lower part, darkened by `shadow["darkness"]`; with the
    `wheel_shadows` hard case, `shadow["wheel_darkness"] > 0` adds near-black blobs around each tyre's contact patch.

    Args:
        car: The assembled car (car frame, metres).
        grey: Turntable grey level in 0..1.
        shadow: `darkness`, `wheel_darkness`, `blur_m` from the car's parameters.
        size: Texture side in pixels.

    Returns:
        An RGB image; row 0 is the +y edge of the turntable (texture v=1), as OpenGL samples it flipped.
    """
    metres_to_px = size / (2 * TURNTABLE_RADIUS)

    def to_px(xy: np.ndarray) -> list[tuple[float, float]]:
        return [((x + TURNTABLE_RADIUS) * metres_to_px, (TURNTABLE_RADIUS - y) * metres_to_px) for x, y in xy]

    occlusion = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(occlusion)
    low = car.vertices()
    low = low[low[:, 2] < 0.6][:, :2]
    hull = low[ConvexHull(low).vertices]
    draw.polygon(to_px(hull * 0.97), fill=int(255 * shadow["darkness"]))
    occlusion = occlusion.filter(ImageFilter.GaussianBlur(shadow["blur_m"] * metres_to_px))
    if shadow.get("wheel_darkness", 0) > 0:
        blobs = Image.new("L", (size, size), 0)
        blob_draw = ImageDraw.Draw(blobs)
        for wheel in car.wheels:
            rx, ry = wheel.radius * 0.9, wheel.width * 0.75
            ((cx, cy),) = to_px(np.array([[wheel.x, wheel.y]]))
            blob_draw.ellipse(
                [cx - rx * metres_to_px, cy - ry * metres_to_px, cx + rx * metres_to_px, cy + ry * metres_to_px],
                fill=int(255 * shadow["wheel_darkness"]),
            )
        blobs = blobs.filter(ImageFilter.GaussianBlur(0.06 * metres_to_px))
        occlusion = Image.fromarray(np.maximum(np.asarray(occlusion), np.asarray(blobs)))
    darkening = 1.0 - np.asarray(occlusion, dtype=np.float32) / 255.0  # (size, size)
    rgb = np.clip(grey * darkening, 0, 1)[:, :, None].repeat(3, axis=2)  # (size, size, 3)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def repaint(texture: Image.Image, paint: dict) -> Image.Image:
    """Recolour a livery texture with the paint: the texture's shading (luminance) times the paint colour.

    Dark areas (windows, grilles, tyres drawn into the texture) stay dark; `paint["strength"]` blends with the
    original livery so that decals still show faintly.
    """
    original = np.asarray(texture.convert("RGB"), dtype=np.float32) / 255.0  # (height, width, 3)
    luma = original @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (height, width)
    reference = max(float(np.percentile(luma, 90)), 1e-3)
    shade = np.clip(luma / reference, 0.0, 1.15) ** 0.8
    painted = np.asarray(paint["rgb"], dtype=np.float32) * shade[:, :, None]
    out = paint["strength"] * painted + (1 - paint["strength"]) * original
    return Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8))
