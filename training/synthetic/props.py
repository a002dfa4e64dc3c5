"""Hard-case props attached to a car: a thin antenna and a roof rack. They are part of the car (and of its mask)."""

from __future__ import annotations

import numpy as np

from .meshes import CarModel, MeshPart, cylinder


def box(centre: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box as unindexed triangles with face normals: `(positions, normals)`, each `(36, 3)`."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]) * size + centre
    faces = []  # each face: 4 corner indices counter-clockwise seen from outside, and the outward normal
    for axis in range(3):
        for sign in (-1, 1):
            idx = [i for i in range(8) if ((i >> (2 - axis)) & 1) == (sign > 0)]
            a, b, c, d = idx  # bits ordered x, y, z; reorder into a loop
            loop = [a, b, d, c]
            normal = np.zeros(3)
            normal[axis] = sign
            p = corners[loop]
            if np.dot(np.cross(p[1] - p[0], p[2] - p[0]), normal) < 0:
                loop = loop[::-1]
            faces.append((loop, normal))
    positions, normals = [], []
    for loop, normal in faces:
        for tri in ((0, 1, 2), (0, 2, 3)):
            positions += [corners[loop[k]] for k in tri]
            normals += [normal] * 3
    return np.asarray(positions, dtype=np.float32), np.asarray(normals, dtype=np.float32)


def _surface_height(points: np.ndarray, x: float, y: float, radius: float = 0.12) -> float:
    """The highest body point within `radius` of (x, y) in plan view (the car's top surface there)."""
    near = np.hypot(points[:, 0] - x, points[:, 1] - y) < radius
    return float(points[near, 2].max()) if near.any() else float(points[:, 2].max())


def roof_extent(car: CarModel) -> tuple[np.ndarray, float]:
    """The plan-view box of the roof (body points within 12 cm of the top): `([xmin, xmax, ymin, ymax], top z)`."""
    points = car.vertices(("body",))
    top = float(points[:, 2].max())
    roof = points[points[:, 2] > top - 0.12]
    return np.array([roof[:, 0].min(), roof[:, 0].max(), roof[:, 1].min(), roof[:, 1].max()]), top


def antenna(car: CarModel, rng: np.random.Generator) -> tuple[MeshPart, dict]:
    """A thin whip antenna (4-7 mm across, 0.45-0.8 m long, leaning back) on the roof or rear wing.

    Returns:
        The part and its description for the metadata.
    """
    points = car.vertices(("body",))
    (x0, x1, y0, y1), _ = roof_extent(car)
    on_roof = rng.random() < 0.6
    if on_roof:
        x = x0 + rng.uniform(0.05, 0.3) * (x1 - x0)
        y = rng.uniform(-0.2, 0.2) * (y1 - y0)
    else:
        length = points[:, 0].max() - points[:, 0].min()
        x = points[:, 0].min() + rng.uniform(0.08, 0.2) * length
        y = rng.choice([-1, 1]) * rng.uniform(0.3, 0.45) * (points[:, 1].max() - points[:, 1].min())
    base_z = _surface_height(points, x, y) - 0.01
    radius = rng.uniform(0.002, 0.0035)
    height = rng.uniform(0.45, 0.8)
    lean = np.deg2rad(rng.uniform(5, 30))
    positions, normals = cylinder(radius, height, sections=8)  # along y
    # Stand it up along z, lean it toward the rear (-x), and put its foot on the body.
    to_z = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64)
    c, s = np.cos(lean), np.sin(lean)
    tilt = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    rotation = tilt @ to_z
    positions = (positions + np.array([0, height / 2, 0], dtype=np.float32)) @ rotation.T + np.array([x, y, base_z])
    normals = normals @ rotation.T
    info = {
        "mount": "roof" if on_roof else "rear",
        "diameter_mm": round(2000 * radius, 2),
        "length_m": round(float(height), 3),
        "lean_deg": round(float(np.rad2deg(lean)), 1),
    }
    return MeshPart("antenna", "prop", positions.astype(np.float32), normals.astype(np.float32)), info


def roof_rack(car: CarModel, rng: np.random.Generator) -> tuple[MeshPart, dict]:
    """A roof rack: two side rails on four feet and two or three cross bars, a few centimetres above the roof.

    Returns:
        The part and its description for the metadata.
    """
    points = car.vertices(("body",))
    (x0, x1, y0, y1), top = roof_extent(car)
    lift = rng.uniform(0.04, 0.09)
    rail = rng.uniform(0.025, 0.04)
    inset = 0.12 * (y1 - y0)
    pieces = []
    rail_z = top + lift
    for y in (y0 + inset, y1 - inset):
        pieces.append(box(np.array([(x0 + x1) / 2, y, rail_z]), np.array([x1 - x0, rail, rail])))
        for x in (x0 + 0.05, x1 - 0.05):
            foot_bottom = _surface_height(points, x, y) - 0.02
            pieces.append(
                box(np.array([x, y, (foot_bottom + rail_z) / 2]), np.array([0.04, 0.04, rail_z - foot_bottom]))
            )
    bars = int(rng.integers(2, 4))
    for x in np.linspace(x0 + 0.15 * (x1 - x0), x1 - 0.15 * (x1 - x0), bars):
        pieces.append(box(np.array([x, 0.0, rail_z + rail]), np.array([rail, (y1 - y0) * 1.05, rail * 0.8])))
    positions = np.concatenate([p for p, _ in pieces])
    normals = np.concatenate([n for _, n in pieces])
    info = {"cross_bars": bars, "height_above_roof_m": round(float(lift), 3), "bar_m": round(float(rail), 3)}
    return MeshPart("roof rack", "prop", positions, normals), info
