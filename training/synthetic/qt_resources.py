"""Read files out of a Qt resource bundle (`.rcc`), the format GCompris packs its activities' photographs in.

A bundle starts with the magic `qres` and four big-endian 32-bit words: the format version (1 to 3) and the offsets
of the tree, the data and the names. Tree nodes are 14 bytes (version 1) or 22 bytes (2 and 3, with a timestamp):
name offset (4), flags (2), then either child count and first child index (a directory, flag 2) or country,
language and data offset (a file). A name is a 16-bit length, a 32-bit hash and UTF-16BE text; a file's data is a
32-bit length and the bytes, zlib-compressed after a 4-byte size when flag 1 is set. Zstandard-compressed files
(flag 4) are refused with a clear error, as the bundles used here have none.

Usage::

    from training.synthetic.qt_resources import read_qt_resources

    files = read_qt_resources("explore_monuments.rcc")  # {"gcompris/src/.../eiffelTower.webp": b"RIFF...", ...}
"""

from __future__ import annotations

import os
import struct
import zlib

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


class QtResourceError(ValueError):
    """Raised for a file that is not a readable Qt resource bundle; the message names the file and the problem."""


def read_qt_resources(path: str | os.PathLike) -> dict[str, bytes]:
    """Every file of a Qt resource bundle, by its path inside the bundle (no leading slash).

    Raises:
        QtResourceError: If the file is not a Qt resource bundle of version 1 to 3, is truncated, or holds a
            Zstandard-compressed file.
    """
    with open(path, "rb") as handle:
        blob = handle.read()
    if blob[:4] != b"qres" or len(blob) < 20:
        raise QtResourceError(f"{path}: not a Qt resource bundle (expected the magic b'qres', got {blob[:4]!r})")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise QtResourceError(f"{path}: Qt resource format version {version}; expected 1, 2 or 3")
    node_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}
    try:
        _walk(blob, path, tree, data, names, node_size, 0, "", files)
    except (struct.error, zlib.error, UnicodeDecodeError) as error:
        raise QtResourceError(f"{path}: truncated or corrupt Qt resource bundle ({error})") from error
    return files


def _walk(
    blob: bytes,
    path: str | os.PathLike,
    tree: int,
    data: int,
    names: int,
    node_size: int,
    index: int,
    prefix: str,
    files: dict[str, bytes],
) -> None:
    """Add the files under tree node `index` (whose path is `prefix`) to `files`."""
    offset = tree + index * node_size
    name_offset, flags = struct.unpack(">IH", blob[offset : offset + 6])
    name = _name(blob, names + name_offset) if index else ""
    here = f"{prefix}/{name}" if prefix else name
    if flags & _DIRECTORY:
        count, first = struct.unpack(">II", blob[offset + 6 : offset + 14])
        for child in range(first, first + count):
            _walk(blob, path, tree, data, names, node_size, child, here, files)
        return
    (data_offset,) = struct.unpack(">I", blob[offset + 10 : offset + 14])
    (length,) = struct.unpack(">I", blob[data + data_offset : data + data_offset + 4])
    content = blob[data + data_offset + 4 : data + data_offset + 4 + length]
    if len(content) != length:
        raise QtResourceError(f"{path}: {here} is truncated ({len(content)} of {length} bytes)")
    if flags & _ZSTD:
        raise QtResourceError(f"{path}: {here} is Zstandard-compressed, which this reader does not support")
    files[here] = zlib.decompress(content[4:]) if flags & _COMPRESSED else content


def _name(blob: bytes, offset: int) -> str:
    """The UTF-16BE name at `offset`: a 16-bit length in characters, a 32-bit hash, then the text."""
    (length,) = struct.unpack(">H", blob[offset : offset + 2])
    return blob[offset + 6 : offset + 6 + 2 * length].decode("utf-16-be")
