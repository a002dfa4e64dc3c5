"""Studio geometry: a cyclorama (a floor curving up into a wall), and a turntable with a baked contact shadow.

pyrender does not draw alpha-blended materials, so the soft shadow is baked into the turntable's opaque texture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.spatial import ConvexHull

from .meshes import CarModel
from .params import CYCLORAMA_COVE_M, CYCLORAMA_RADIUS_M

TURNTABLE_RADIUS = 3.3
TURNTABLE_HEIGHT = 0.03
CYCLORAMA_RADIUS = CYCLORAMA_RADIUS_M
CYCLORAMA_COVE = CYCLORAMA_COVE_M
CYCLORAMA_HEIGHT = 12.0
#: The wall texture covers this sector of the cyclorama, centred on the camera's view (+y); it repeats elsewhere.
WALL_SECTOR_DEG = 150.0

Triangles = tuple[np.ndarray, np.ndarray, np.ndarray]


def _profile(
    radius: float, cove: float, height: float, cove_steps: int
) -> list[tuple[float, float, float, float, float]]:
    """The wall's profile from the floor's edge up: `(r, z, normal r, normal z, length along the profile)`."""
    floor_end = radius - cove
    profile = [(floor_end, 0.0, 0.0, 1.0, 0.0)]
    for k in range(1, cove_steps + 1):
        a = k / cove_steps * np.pi / 2
        profile.append((floor_end + cove * np.sin(a), cove * (1 - np.cos(a)), -np.sin(a), np.cos(a), cove * a))
    profile.append((radius, height, -1.0, 0.0, cove * np.pi / 2 + height - cove))
    return profile


def cyclorama(
    radius: float = CYCLORAMA_RADIUS,
    cove: float = CYCLORAMA_COVE,
    height: float = CYCLORAMA_HEIGHT,
    sections: int = 96,
    cove_steps: int = 12,
) -> tuple[Triangles, Triangles]:
    """The studio: a flat floor disc, and a wall that curves up from it through a quarter-circle cove; both face in.

    Args:
        radius: Distance from the turntable's centre to the vertical wall.
        cove: Radius of the cove between floor and wall (small values give a sharp corner).
        height: Height of the wall's top.
        sections: Segments around the circle.
        cove_steps: Segments along the cove.

    Returns:
        `(floor, wall)`, each `(positions, normals, uvs)` of unindexed triangles. Floor UVs map
        `[-(radius - cove), radius - cove]^2` onto the unit square; wall UVs run along the arc (u, `WALL_SECTOR_DEG`
        per unit, 0.5 straight ahead of the camera at +y) and along the profile from the floor's edge (v, 0..1).
    """
    profile = _profile(radius, cove, height, cove_steps)
    floor_end, total = profile[0][0], profile[-1][4]
    angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, sections + 1)  # starts and ends behind the camera

    def wall_vertex(j: int, i: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        r, z, nr, nz, length = profile[j]
        c, s = np.cos(angles[i]), np.sin(angles[i])
        u = (np.rad2deg(angles[i]) - 90.0) / WALL_SECTOR_DEG + 0.5
        return np.array([r * c, r * s, z]), np.array([nr * c, nr * s, nz]), (u, length / total)

    def floor_vertex(r: float, i: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        x, y = r * np.cos(angles[i]), r * np.sin(angles[i])
        return np.array([x, y, 0.0]), np.array([0.0, 0.0, 1.0]), (x / (2 * floor_end) + 0.5, y / (2 * floor_end) + 0.5)

    floor, wall = ([], [], []), ([], [], [])
    for i in range(sections):
        corners = (floor_vertex(0.0, i), floor_vertex(floor_end, i), floor_vertex(floor_end, i + 1))
        for target, values in zip(floor, zip(*corners)):
            target.extend(values)
        for j in range(len(profile) - 1):
            a, b, c, d = wall_vertex(j, i), wall_vertex(j, i + 1), wall_vertex(j + 1, i + 1), wall_vertex(j + 1, i)
            for tri in ((a, b, c), (a, c, d)):
                for target, values in zip(wall, zip(*tri)):
                    target.extend(values)

    def pack(parts: tuple[list, list, list]) -> Triangles:
        return tuple(np.asarray(p, dtype=np.float32) for p in parts)

    return pack(floor), pack(wall)


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


def shadow_texture(
    car: CarModel, grey: float, shadow: dict, size: int = 512, base: Image.Image | None = None
) -> Image.Image:
    """The turntable's texture in the car frame: plain grey (or `base`) with a soft contact shadow under the car.

    The shadow is the blurred plan-view hull of the car's lower part, darkened by `shadow["darkness"]`; with the
    `wheel_shadows` hard case, `shadow["wheel_darkness"] > 0` adds near-black blobs around each tyre's contact patch.

    Args:
        car: The assembled car (car frame, metres).
        grey: Turntable grey level in 0..1.
        shadow: `darkness`, `wheel_darkness`, `blur_m` from the car's parameters.
        size: Texture side in pixels.
        base: The turntable's own surface (marks, seams), `size` square, in place of plain grey.

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
    if base is None:
        surface = np.full((size, size, 3), grey, dtype=np.float32)
    else:
        surface = np.asarray(base.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0
    rgb = np.clip(surface * darkening[:, :, None], 0, 1)  # (size, size, 3)
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
