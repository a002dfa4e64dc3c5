"""Test infrastructure for the demo tests: writes small images, masks and deliberately broken files to disk."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

#: EXIF tag of the orientation.
EXIF_ORIENTATION = 0x0112


def random_rgb(height: int = 40, width: int = 60, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def box_mask(height: int = 40, width: int = 60) -> np.ndarray:
    """A 0/1 mask with a filled rectangle."""
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : 3 * height // 4, width // 3 : 5 * width // 6] = 1
    return mask


def write_jpeg(path: Path, height: int = 40, width: int = 60, seed: int = 0) -> Path:
    Image.fromarray(random_rgb(height, width, seed)).save(path, quality=95)
    return path


def write_image_variant(path: Path, kind: str, height: int = 40, width: int = 60) -> Path:
    """Write an image of an awkward kind: gray, rgba, cmyk, 16bit or exif (stored rotated, orientation 6)."""
    rgb = random_rgb(height, width)
    if kind == "gray":
        Image.fromarray(rgb[..., 0]).save(path)
    elif kind == "rgba":
        alpha = np.full((height, width, 1), 128, np.uint8)
        Image.fromarray(np.concatenate([rgb, alpha], axis=-1)).save(path)
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    elif kind == "16bit":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)
    elif kind == "exif":
        image = Image.fromarray(rgb)
        exif = image.getexif()
        exif[EXIF_ORIENTATION] = 6  # displayed rotated by 90 degrees: width and height swap
        image.save(path, exif=exif, quality=95)
    else:
        raise ValueError(kind)
    return path


def write_mask(path: Path, mask: np.ndarray, encoding: str) -> Path:
    """Write a 0/1 mask as a `palette` GIF (indices 0/1, like Carvana's), a `png255` or a `png01` PNG."""
    if encoding == "palette":
        image = Image.fromarray(mask.astype(np.uint8), mode="P")
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * (256 - 2) * 3)
        image.save(path)
    elif encoding == "png255":
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    elif encoding == "png01":
        Image.fromarray(mask.astype(np.uint8)).save(path)
    else:
        raise ValueError(encoding)
    return path


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_not_an_image(path: Path) -> Path:
    path.write_text("this is a text file, not a photo\n")
    return path


def write_truncated_jpeg(path: Path, height: int = 120, width: int = 160) -> Path:
    write_jpeg(path, height, width)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb must never be decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    return path


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a tiny carseg model and a 64x96 processor with `save_pretrained`, as the demo loads them."""
    import torch
    from conftest import tiny_config

    from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor

    torch.manual_seed(seed)
    CarSegForSemanticSegmentation(tiny_config()).save_pretrained(folder)
    CarSegImageProcessor(size={"height": 64, "width": 96}).save_pretrained(folder)
    return folder


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
