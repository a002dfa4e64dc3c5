"""The TORCS car meshes: where they live, their licences, and assembling a body with wheels at real-car scale.

The meshes come from Debian's `torcs-data` package, unpacked into a cache folder outside the repository
(`$CARSEG_TORCS_DIR`, default `~/.cache/carseg/torcs`) by `python -m training.synthetic.fetch_meshes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .ac3d import AC3DPart, load_ac3d
from .car_xml import WheelSpec, body_length, wheel_specs
from .debian import copyright_stanzas

CARS_SUBDIR = Path("usr/share/games/torcs/cars")
COPYRIGHT_SUBDIR = Path("usr/share/doc/torcs-data/copyright")
#: The 17 car bodies of torcs-data 1.3.7; the four road cars come first.
ROAD_CARS = ("p406", "155-DTM", "acura-nsx-sz", "baja-bug")
#: Real cars are 3.9-5.0 m long; meshes are scaled into this range (most are already in metres).
CAR_LENGTH_RANGE = (3.9, 5.0)
FETCH_HINT = (
    "get them with `python -m training.synthetic.fetch_meshes` (runs `apt-get download torcs-data` and "
    "`dpkg -x` into that folder; about 333 MB, Debian/Ubuntu only), or point CARSEG_TORCS_DIR at an unpacked copy"
)


class MeshesNotFoundError(FileNotFoundError):
    """Raised when the TORCS meshes are not unpacked where expected; the message says how to get them."""


def torcs_dir() -> Path:
    """The folder holding the unpacked `torcs-data` package (`$CARSEG_TORCS_DIR` or `~/.cache/carseg/torcs`)."""
    return Path(os.environ.get("CARSEG_TORCS_DIR", Path.home() / ".cache" / "carseg" / "torcs")).expanduser()


def cars_dir(root: str | os.PathLike | None = None) -> Path:
    """The `cars/` folder inside the unpacked package.

    Raises:
        MeshesNotFoundError: If it does not exist, with instructions.
    """
    root = Path(root) if root is not None else torcs_dir()
    folder = root / CARS_SUBDIR
    if not folder.is_dir():
        raise MeshesNotFoundError(f"the TORCS car meshes are not in {str(folder)!r}; {FETCH_HINT}")
    return folder


def available_cars(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the car folders that hold a `<name>.acc` body and a `<name>.xml`, sorted."""
    folder = cars_dir(root)
    names = [p.name for p in folder.iterdir() if (p / f"{p.name}.acc").is_file() and (p / f"{p.name}.xml").is_file()]
    if not names:
        raise MeshesNotFoundError(f"no car bodies (<name>/<name>.acc) under {str(folder)!r}; {FETCH_HINT}")
    return sorted(names)


def mesh_licence(name: str, root: str | os.PathLike | None = None) -> dict[str, str]:
    """The licence and copyright holders of a car model, from the package's copyright file.

    Args:
        name: The car folder name, e.g. "p406".
        root: The unpacked package (default `torcs_dir()`).

    Returns:
        `{"license": ..., "copyright": ..., "source": "Debian torcs-data (...copyright)"}`; the most specific
        stanza wins (`data/cars/models/<name>/*` over `*`).
    """
    root = Path(root) if root is not None else torcs_dir()
    path = root / COPYRIGHT_SUBDIR
    if not path.is_file():
        return {"license": "unknown", "copyright": "unknown", "source": f"{path} missing"}
    best = None
    for globs, holders, licence in copyright_stanzas(str(path)):
        if f"data/cars/models/{name}/*" in globs:
            best = (holders, licence)
            break
        if "*" in globs and best is None:
            best = (holders, licence)
    holders, licence = best if best else ("unknown", "unknown")
    return {"license": licence, "copyright": holders, "source": "Debian package torcs-data 1.3.7 (debian/copyright)"}


@dataclass
class MeshPart:
    """A renderable piece of a car, in the car frame (x forward, y left, z up, metres, ground at z=0).

    Attributes:
        name: Object name.
        kind: "body", "tyre" or "rim".
        positions: `(corners, 3)` float32, three corners per triangle.
        normals: `(corners, 3)` float32.
        uvs: `(corners, 2)` float32, or None for untextured parts.
        texture: The texture file name (body parts), or None.
        paintable: Whether the part carries the car's own livery texture (recoloured with the paint).
    """

    name: str
    kind: str
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None = None
    texture: str | None = None
    paintable: bool = False


@dataclass
class CarModel:
    """A car body with wheels, scaled to a real car and standing on z=0.

    Attributes:
        name: The TORCS folder name.
        folder: Where its files are.
        parts: Body parts, then tyres and rims.
        wheels: The wheel specs after scaling and placement (z of the centre = radius).
        scale: The factor applied to the raw mesh.
        licence: From `mesh_licence`.
    """

    name: str
    folder: Path
    parts: list[MeshPart]
    wheels: list[WheelSpec]
    scale: float
    licence: dict[str, str] = field(default_factory=dict)

    def vertices(self, kinds: tuple[str, ...] = ("body", "tyre", "rim")) -> np.ndarray:
        """All corner positions of the given part kinds, `(n, 3)`."""
        return np.concatenate([p.positions for p in self.parts if p.kind in kinds])

    @property
    def bounds(self) -> np.ndarray:
        """`(2, 3)` min and max corner of the whole car."""
        points = self.vertices()
        return np.stack([points.min(0), points.max(0)])

    def texture_image(self, texture: str) -> Image.Image:
        """Load one of the car's SGI `.rgb` textures as RGB."""
        return _load_texture(str(self.folder / texture))


@lru_cache(maxsize=16)
def _load_texture(path: str) -> Image.Image:
    if not Path(path).is_file():
        raise FileNotFoundError(f"texture {path!r} referenced by the car model does not exist")
    with Image.open(path) as image:
        return image.convert("RGB")


def cylinder(radius: float, width: float, sections: int = 40, capped: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A cylinder along the y axis centred at the origin, as unindexed triangles with smooth side normals.

    Args:
        radius: Radius in metres.
        width: Extent along y.
        sections: Segments around the circumference.
        capped: Whether to close both ends with flat discs.

    Returns:
        `(positions, normals)`, each `(corners, 3)` float32.
    """
    angles = np.linspace(0, 2 * np.pi, sections + 1)
    ring = np.stack([np.cos(angles), np.zeros_like(angles), np.sin(angles)], axis=1)  # (sections + 1, 3)
    half = np.array([0.0, width / 2, 0.0])
    positions, normals = [], []
    for i in range(sections):
        a, b = ring[i], ring[i + 1]
        quad = [a * radius - half, b * radius - half, b * radius + half, a * radius + half]
        positions += [quad[0], quad[2], quad[1], quad[0], quad[3], quad[2]]
        normals += [a, b, b, a, a, b]
        if capped:
            for side in (-1.0, 1.0):
                centre = side * half
                tri = [centre, a * radius + side * half, b * radius + side * half]
                positions += [tri[0], tri[2], tri[1]] if side > 0 else tri  # counter-clockwise seen from outside
                normals += [np.array([0.0, side, 0.0])] * 3
    return np.asarray(positions, dtype=np.float32), np.asarray(normals, dtype=np.float32)


def _wheel_parts(wheel: WheelSpec) -> list[MeshPart]:
    """A tyre (capped cylinder) and a rim disc that stands just proud of the tyre's outer face."""
    centre = np.array([wheel.x, wheel.y, wheel.radius], dtype=np.float32)
    tyre_pos, tyre_nrm = cylinder(wheel.radius, wheel.width)
    outward = 1.0 if wheel.y > 0 else -1.0
    rim_pos, rim_nrm = cylinder(wheel.rim_radius * 0.95, 0.02)
    rim_pos = rim_pos + np.array([0.0, outward * (wheel.width / 2 - 0.005), 0.0], dtype=np.float32)
    return [
        MeshPart(f"{wheel.name} tyre", "tyre", tyre_pos + centre, tyre_nrm),
        MeshPart(f"{wheel.name} rim", "rim", rim_pos + centre, rim_nrm),
    ]


def drop_floor_pan(part: AC3DPart, height: float = 0.03) -> AC3DPart:
    """Remove flat, horizontal triangles lying on the ground (some bodies carry a floor plane wider than the car).

    Args:
        part: A body part (z-up, ground at z=0).
        height: Triangles whose corners all lie below this height and that face straight up or down are dropped.

    Returns:
        The part without those triangles (the same object when none is dropped).
    """
    triangles = part.positions.reshape(-1, 3, 3)  # (triangles, corners, xyz)
    normal = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])  # (triangles, 3)
    vertical = np.abs(normal[:, 2]) > 0.95 * np.linalg.norm(normal, axis=1)
    keep = ~((triangles[:, :, 2].max(axis=1) < height) & vertical)
    if keep.all():
        return part
    corners = np.repeat(keep, 3)
    return AC3DPart(
        part.name,
        part.texture,
        part.positions[corners],
        part.normals[corners],
        part.uvs[corners],
        part.double_sided[keep],
    )


def build_car(name: str, root: str | os.PathLike | None = None) -> CarModel:
    """Load a TORCS car body, add its four wheels, scale it to a real car length and stand it on z=0.

    Args:
        name: The car folder name (see `available_cars`).
        root: The unpacked package (default `torcs_dir()`).

    Returns:
        The assembled `CarModel`.

    Raises:
        MeshesNotFoundError: If the meshes are not unpacked.
        FileNotFoundError: If the car's files are missing.
        training.synthetic.ac3d.AC3DParseError: If the body is malformed.
        training.synthetic.car_xml.CarXMLError: If the wheel values are missing.
    """
    folder = cars_dir(root) / name
    xml_path = folder / f"{name}.xml"
    if not xml_path.is_file():
        raise FileNotFoundError(f"car {name!r}: {str(xml_path)!r} does not exist; available: {available_cars(root)}")
    xml_text = xml_path.read_text(encoding="latin-1")
    body: list[AC3DPart] = load_ac3d(folder / f"{name}.acc")
    wheels = wheel_specs(xml_text, source=str(xml_path))
    parts = [
        MeshPart(p.name, "body", p.positions, p.normals, p.uvs, p.texture, paintable=p.texture == f"{name}.rgb")
        for p in map(drop_floor_pan, body)
        if p.num_triangles
    ]
    for wheel in wheels:
        parts += _wheel_parts(wheel)
    # Normalise scale: the body's own length is what the viewer sees; aim for the XML's body length when sane.
    points = np.concatenate([p.positions for p in parts])
    length = float(points[:, 0].max() - points[:, 0].min())
    target = body_length(xml_text) or length
    target = float(np.clip(target, *CAR_LENGTH_RANGE))
    scale = target / length
    lowest = float(points[:, 2].min())
    for part in parts:
        part.positions = (part.positions - np.array([0, 0, lowest], dtype=np.float32)) * np.float32(scale)
    wheels = [
        WheelSpec(
            w.name,
            w.x * scale,
            w.y * scale,
            w.radius * scale,
            w.rim_radius * scale,
            w.width * scale,
            w.ride_height * scale,
        )
        for w in wheels
    ]
    return CarModel(name, folder, parts, wheels, scale, mesh_licence(name, root))
