"""The Qt resource bundle reader, on bundles written here by a minimal writer (test infrastructure).

The writer follows Qt's `rcc` format (version 1 or 2): header, tree of 14- or 22-byte nodes, data and names, with
optional zlib compression. Nothing here needs GCompris or its Debian package.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from training.synthetic.qt_resources import QtResourceError, read_qt_resources


def write_qt_resources(path: Path, files: dict[str, bytes], version: int = 2, compress: bool = False) -> None:
    """Write `files` (inside paths such as "a/b/c.webp") as a Qt resource bundle at `path`."""
    tree_of: dict[str, dict] = {}
    for name in files:
        node = tree_of
        for part in name.split("/"):
            node = node.setdefault(part, {})
    nodes: list[bytes] = []
    names, data = bytearray(), bytearray()

    def name_offset(name: str) -> int:
        offset = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return offset

    def file_node(name: str, full: str) -> bytes:
        content = files[full]
        flags = 0
        if compress:
            content, flags = struct.pack(">I", len(content)) + zlib.compress(content), 1
        offset = len(data)
        data.extend(struct.pack(">I", len(content)) + content)
        return struct.pack(">IHHHI", name_offset(name), flags, 0, 0, offset)

    # Breadth-first, as rcc writes it: a directory's children are consecutive nodes.
    queue = [("", "", tree_of)]
    nodes.append(b"")  # the root, filled in below
    slots = {"": 0}
    while queue:
        name, full, children = queue.pop(0)
        first = len(nodes)
        for child, grandchildren in sorted(children.items()):
            child_full = f"{full}/{child}" if full else child
            slots[child_full] = len(nodes)
            nodes.append(b"" if grandchildren else file_node(child, child_full))
            if grandchildren:
                queue.append((child, child_full, grandchildren))
        offset = name_offset(name) if full else 0
        nodes[slots[full]] = struct.pack(">IHII", offset, 2, len(children), first)
    padding = b"" if version == 1 else bytes(8)
    tree = b"".join(node + padding for node in nodes)
    header_size = 20
    blob = struct.pack(
        ">4sIIII", b"qres", version, header_size, header_size + len(tree), header_size + len(tree) + len(data)
    )
    path.write_bytes(blob + tree + bytes(data) + bytes(names))


FILES = {"a/readme.txt": b"hello", "a/b/photo.webp": b"RIFF" + bytes(range(200)), "top.bin": b"\x00\x01"}


@pytest.mark.parametrize(("version", "compress"), [(1, False), (2, False), (2, True)])
def test_reads_every_file_back(tmp_path, version, compress):
    bundle = tmp_path / "x.rcc"
    write_qt_resources(bundle, FILES, version=version, compress=compress)
    assert read_qt_resources(bundle) == FILES


def test_bad_bundles_are_named_with_the_problem(tmp_path):
    not_a_bundle = tmp_path / "photo.jpg"
    not_a_bundle.write_bytes(b"\xff\xd8\xff" + bytes(40))
    with pytest.raises(QtResourceError, match=r"photo\.jpg: not a Qt resource bundle"):
        read_qt_resources(not_a_bundle)
    bundle = tmp_path / "x.rcc"
    write_qt_resources(bundle, FILES)
    blob = bundle.read_bytes()
    future = tmp_path / "future.rcc"
    future.write_bytes(blob[:4] + struct.pack(">I", 9) + blob[8:])
    with pytest.raises(QtResourceError, match="version 9; expected 1, 2 or 3"):
        read_qt_resources(future)
    truncated = tmp_path / "truncated.rcc"
    truncated.write_bytes(blob[:60])
    with pytest.raises(QtResourceError, match=r"truncated\.rcc: truncated or corrupt"):
        read_qt_resources(truncated)
