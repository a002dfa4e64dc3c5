"""A reader for AC3D (`.ac` / `.acc`) text models, as shipped with the TORCS car bodies.

Only what the TORCS cars use is supported: objects with `name`, `texture`, `loc`, `rot`, `numvert` (3 values, or 6
with a per-vertex normal in the `.acc` variant), `numsurf`, `SURF` with `mat` and `refs` (the first UV pair per
reference; `.acc` files list up to four for multi-texturing), and `kids`. Surfaces are polygon fans (type 0) and
triangle strips (type 4); line surfaces (types 1 and 2) are skipped. Coordinates are converted from AC3D's y-up to
the z-up frame used everywhere else here: `(x, y, z) -> (x, -z, y)`, a proper rotation, so windings are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: AC3D y-up to z-up: new = Y_UP_TO_Z_UP @ old.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

SURFACE_POLYGON = 0
SURFACE_CLOSED_LINE = 1
SURFACE_LINE = 2
SURFACE_TRIANGLE_STRIP = 4


class AC3DParseError(ValueError):
    """Raised when an AC3D file is malformed; the message names the file and line."""


@dataclass
class AC3DPart:
    """The triangles of one AC3D object, unindexed (three corners per triangle) because UVs are per corner.

    Attributes:
        name: The object's name ("" when it has none).
        texture: The texture file name, relative to the model's folder, or None.
        positions: `(triangles * 3, 3)` float32 corner positions, z-up.
        normals: `(triangles * 3, 3)` float32 unit normals, z-up (from the file, or the face normal).
        uvs: `(triangles * 3, 2)` float32 texture coordinates (AC3D/OpenGL convention: v=0 is the image bottom).
        double_sided: `(triangles,)` bool, the AC3D two-sided flag (0x20) of each triangle's surface.
    """

    name: str
    texture: str | None
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    double_sided: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def num_triangles(self) -> int:
        return len(self.positions) // 3


def surface_triangles(kind: int, indices: list[int]) -> list[tuple[int, int, int]]:
    """Split one AC3D surface into triangles of positions in its reference list.

    Args:
        kind: The surface type (low 4 bits of the SURF flags): 0 polygon, 4 triangle strip; lines give none.
        indices: How many references the surface has, as `range`-like positions `0..n-1` are returned.

    Returns:
        Triangles as triples of reference positions, with degenerate ones (a repeated vertex) dropped. Strips
        alternate winding so that all triangles face the same way as the first.
    """
    n = len(indices)
    triangles: list[tuple[int, int, int]] = []
    if kind == SURFACE_POLYGON:
        triangles = [(0, i, i + 1) for i in range(1, n - 1)]
    elif kind == SURFACE_TRIANGLE_STRIP:
        triangles = [(i, i + 1, i + 2) if i % 2 == 0 else (i + 1, i, i + 2) for i in range(n - 2)]
    return [t for t in triangles if len({indices[t[0]], indices[t[1]], indices[t[2]]}) == 3]


class _Lines:
    """A cursor over the file's lines that reports the file and line number in errors."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.index = 0

    def next(self) -> list[str]:
        while self.index < len(self.lines):
            line = self.lines[self.index].strip()
            self.index += 1
            if line:
                return _split(line)
        raise self.error("unexpected end of file")

    def at_end(self) -> bool:
        while self.index < len(self.lines) and not self.lines[self.index].strip():
            self.index += 1
        return self.index >= len(self.lines)

    def error(self, message: str) -> AC3DParseError:
        return AC3DParseError(f"{self.path}, line {self.index}: {message}")


def _split(line: str) -> list[str]:
    """Split a line into tokens, keeping a double-quoted string (e.g. a name with spaces) as one token."""
    if '"' not in line:
        return line.split()
    head, _, rest = line.partition('"')
    quoted, _, tail = rest.partition('"')
    return head.split() + [quoted] + tail.split()


def _floats(lines: _Lines, tokens: list[str], count: int | None = None) -> list[float]:
    try:
        values = [float(v) for v in tokens]
    except ValueError as error:
        raise lines.error(f"expected numbers, got {' '.join(tokens)!r}") from error
    if count is not None and len(values) < count:
        raise lines.error(f"expected {count} numbers, got {len(values)}")
    return values


@dataclass
class _Corners:
    """An object's triangle corners as read, three per triangle, before `_make_part` transforms them."""

    positions: list[np.ndarray] = field(default_factory=list)
    normals: list[np.ndarray] = field(default_factory=list)
    has_normal: list[bool] = field(default_factory=list)
    uvs: list[tuple[float, float]] = field(default_factory=list)
    sided: list[bool] = field(default_factory=list)  # one per triangle


def _read_vertices(lines: _Lines, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read `count` vertex lines: `(count, 3)` positions, and `(count, 3)` normals when every line has six numbers."""
    rows = [_floats(lines, lines.next(), 3) for _ in range(count)]
    widths = {len(r) for r in rows}
    vertices = np.array([r[:3] for r in rows], dtype=np.float64).reshape(-1, 3)
    vertex_normals = np.array([r[3:6] for r in rows], dtype=np.float64) if widths and min(widths) >= 6 else None
    return vertices, vertex_normals


def _read_surface(lines: _Lines, vertices: np.ndarray, vertex_normals: np.ndarray | None, corners: _Corners) -> None:
    """Read one SURF block (flags, optional mat, refs) and append its triangles' corners."""
    surf = lines.next()
    if surf[0] != "SURF":
        raise lines.error(f"expected SURF, got {surf[0]!r}")
    flags = int(surf[1], 0)
    refs_line = lines.next()
    if refs_line[0] == "mat":
        refs_line = lines.next()
    if refs_line[0] != "refs":
        raise lines.error(f"expected refs, got {refs_line[0]!r}")
    refs = [_floats(lines, lines.next(), 1) for _ in range(int(refs_line[1]))]
    indices = [int(r[0]) for r in refs]
    if indices and max(indices) >= len(vertices):
        raise lines.error(f"vertex index {max(indices)} out of range ({len(vertices)} vertices)")
    for tri in surface_triangles(flags & 0x0F, indices):
        for corner in tri:
            ref = refs[corner]
            corners.positions.append(vertices[indices[corner]])
            has_normal = vertex_normals is not None
            corners.normals.append(vertex_normals[indices[corner]] if has_normal else np.zeros(3))
            corners.has_normal.append(has_normal)
            corners.uvs.append((ref[1], ref[2]) if len(ref) >= 3 else (0.0, 0.0))
        corners.sided.append(bool(flags & 0x20))


def _read_kids(lines: _Lines, count: int, world: np.ndarray, parts: list[AC3DPart]) -> None:
    """Read `count` child OBJECT blocks, placed in the parent's `world` frame."""
    for _ in range(count):
        header = lines.next()
        if header[0] != "OBJECT":
            raise lines.error(f"expected OBJECT, got {header[0]!r}")
        _read_object(lines, world, parts)


def _read_object(lines: _Lines, parent: np.ndarray, parts: list[AC3DPart]) -> None:
    """Read one OBJECT block (its header line already consumed) and its kids, appending parts."""
    name, texture = "", None
    local = np.eye(4)
    vertices = np.zeros((0, 3))
    vertex_normals: np.ndarray | None = None
    corners = _Corners()
    while True:
        tokens = lines.next()
        key = tokens[0]
        if key == "name":
            name = tokens[1] if len(tokens) > 1 else ""
        elif key == "texture":
            texture = texture or (tokens[1] if len(tokens) > 1 else None)  # .acc lists base/tiled/skids/shad
        elif key == "loc":
            local[:3, 3] = _floats(lines, tokens[1:4], 3)
        elif key == "rot":
            local[:3, :3] = np.array(_floats(lines, tokens[1:10], 9)).reshape(3, 3).T
        elif key == "numvert":
            vertices, vertex_normals = _read_vertices(lines, int(tokens[1]))
        elif key == "numsurf":
            for _ in range(int(tokens[1])):
                _read_surface(lines, vertices, vertex_normals, corners)
        elif key == "kids":
            world = parent @ local
            if corners.positions:
                parts.append(_make_part(name, texture, world, corners))
            _read_kids(lines, int(tokens[1]), world, parts)
            return
        # Other keys (data, url, crease, subdiv, hidden, locked, folded, texrep, texoff) do not change geometry.


def _make_part(name: str, texture: str | None, world: np.ndarray, corners: _Corners) -> AC3DPart:
    """Transform an object's corners into the z-up world frame and fill in missing normals."""
    positions = np.asarray(corners.positions) @ world[:3, :3].T + world[:3, 3]  # (corners, 3) in AC3D world frame
    normals = np.asarray(corners.normals) @ world[:3, :3].T  # (corners, 3)
    positions = positions @ Y_UP_TO_Z_UP.T
    normals = normals @ Y_UP_TO_Z_UP.T
    triangles = positions.reshape(-1, 3, 3)  # (triangles, corners, xyz)
    face = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])  # (triangles, 3)
    face /= np.maximum(np.linalg.norm(face, axis=1, keepdims=True), 1e-12)
    face_per_corner = np.repeat(face, 3, axis=0)  # (corners, 3)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    missing = (~np.asarray(corners.has_normal)) | (length[:, 0] < 1e-8)
    normals = np.where(missing[:, None], face_per_corner, normals / np.maximum(length, 1e-12))
    return AC3DPart(
        name=name,
        texture=texture,
        positions=positions.astype(np.float32),
        normals=normals.astype(np.float32),
        uvs=np.asarray(corners.uvs, dtype=np.float32).reshape(-1, 2),
        double_sided=np.asarray(corners.sided, dtype=bool),
    )


def parse_ac3d(text: str, source: str = "<string>") -> list[AC3DPart]:
    """Parse AC3D text into parts.

    Args:
        text: The file's contents.
        source: A name for error messages.

    Returns:
        One `AC3DPart` per object that has surfaces, in file order.

    Raises:
        AC3DParseError: If the header or a block is malformed.
    """
    lines = _Lines(source, text)
    header = lines.next()
    if not header[0].startswith("AC3D"):
        raise lines.error(f"not an AC3D file: the first line is {header[0]!r}, expected 'AC3Db'")
    parts: list[AC3DPart] = []
    while not lines.at_end():
        tokens = lines.next()
        if tokens[0] == "MATERIAL":
            continue
        if tokens[0] != "OBJECT":
            raise lines.error(f"expected MATERIAL or OBJECT, got {tokens[0]!r}")
        _read_object(lines, np.eye(4), parts)
    return parts


def load_ac3d(path: str | os.PathLike) -> list[AC3DPart]:
    """Read and parse an AC3D file.

    Args:
        path: The `.ac` or `.acc` file.

    Returns:
        The parts, as from `parse_ac3d`.

    Raises:
        FileNotFoundError: If the file is missing.
        AC3DParseError: If it is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AC3D model {str(path)!r} does not exist")
    return parse_ac3d(path.read_text(encoding="latin-1"), source=str(path))
