"""A run's inputs and the names of its outputs: expanding files, folders and globs, and naming each output file."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from ..image_io import IMAGE_EXTENSIONS, PAIR_MASK_SUFFIX


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted list of distinct image files.

    A folder contributes its files with an image extension (`IMAGE_EXTENSIONS`, not recursive), except the masks of
    an image/mask pair folder: `car_03_mask.png` is left out when the folder also holds an image `car_03.*`. A glob
    (`*`, `?`, `[`, `**`) contributes every file it matches; a file is taken as is, whatever its extension.

    Args:
        inputs: Files, folders and glob patterns.

    Returns:
        The files, sorted by path, each once.

    Raises:
        FileNotFoundError: If no input is given, or an input matches no file (it names the input).
    """
    if not inputs:
        raise FileNotFoundError("no input given; pass image files, folders or glob patterns such as 'test/*.jpg'")
    found: dict[str, Path] = {}
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            matches = _images_in_folder(path)
            if not matches:
                raise FileNotFoundError(
                    f"folder {text!r} holds no image files (looked for {', '.join(IMAGE_EXTENSIONS)})"
                )
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True) if os.path.isfile(p)]
            if not matches:
                raise FileNotFoundError(f"the pattern {text!r} matches no file")
        else:
            raise FileNotFoundError(f"input {text!r} does not exist (expected an image file, a folder or a glob)")
        for match in matches:
            found.setdefault(os.path.realpath(match), match)
    return sorted(found.values(), key=lambda p: os.fspath(p))


def _images_in_folder(folder: Path) -> list[Path]:
    """A folder's image files, without the masks of image/mask pairs (`x_mask.png` beside `x.jpg`)."""
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    stems = {p.stem for p in images}
    return [p for p in images if not (p.stem.endswith(PAIR_MASK_SUFFIX) and p.stem[: -len(PAIR_MASK_SUFFIX)] in stems)]


def mask_path_for(image: Path, out_dir: Path, mask_format: str) -> Path:
    """The mask file written for `image`: `<out_dir>/<image stem>.<png|gif>`."""
    return out_dir / f"{image.stem}.{mask_format}"


def overlay_path_for(image: Path, overlay_dir: Path) -> Path:
    """The overlay written for `image`: `<overlay_dir>/<image stem>_overlay.jpg`."""
    return overlay_dir / f"{image.stem}_overlay.jpg"


def submission_name(image: Path) -> str:
    """The `img` value of an image's submission row: its file name (`.jpg` added when it has no extension)."""
    return image.name if image.suffix else f"{image.name}.jpg"


def check_name_clashes(paths: Sequence[Path], by_stem: bool) -> None:
    """Refuse inputs that would write the same output name.

    Args:
        paths: The expanded inputs.
        by_stem: Whether output files are named by the image's stem (mask or overlay files); otherwise only
            submission rows are written, named by `submission_name`.

    Raises:
        ValueError: Naming both inputs and the output name they share.
    """
    seen: dict[str, Path] = {}
    clashes = []
    for path in paths:
        key = path.stem if by_stem else submission_name(path)
        if key in seen:
            clashes.append(f"inputs {str(seen[key])!r} and {str(path)!r} would write the same output name {key!r}")
        seen.setdefault(key, path)
    if clashes:  # all of them at once, so that one pass over the inputs mends them
        shown = "; ".join(clashes[:5]) + (f"; ... ({len(clashes)} in all)" if len(clashes) > 5 else "")
        raise ValueError(f"{shown}; predict them in separate runs")


def output_files(
    image: Path, out_dir: str | os.PathLike | None, overlay_dir: str | os.PathLike | None, mask_format: str
) -> dict[str, Path]:
    """The files a run writes for `image`, by output kind: `masks` (under `out_dir`), `overlays` (`overlay_dir`).

    Outputs not asked for (a None folder) are left out.
    """
    files = {}
    if out_dir is not None:
        files["masks"] = mask_path_for(image, Path(out_dir), mask_format)
    if overlay_dir is not None:
        files["overlays"] = overlay_path_for(image, Path(overlay_dir))
    return files


#: The option that names each kind of output folder, for messages.
OUTPUT_OPTIONS = {"masks": "--out", "overlays": "--overlay"}


def check_outputs_apart_from_inputs(
    inputs: Sequence[str | os.PathLike],
    paths: Sequence[Path],
    out_dir: str | os.PathLike | None,
    overlay_dir: str | os.PathLike | None,
    mask_format: str,
) -> None:
    """Refuse a run whose mask or overlay files would land on its own photos, or in a folder it reads photos from.

    Args:
        inputs: The files, folders and globs as given.
        paths: Their expansion (`expand_inputs`).
        out_dir: The masks' folder, or None.
        overlay_dir: The overlays' folder, or None.
        mask_format: `png` or `gif`, the masks' extension.

    Raises:
        ValueError: Naming the option and the folder or photo, before anything is written.
    """
    input_folders = {os.path.realpath(p) for p in (Path(os.fspath(i)).expanduser() for i in inputs) if p.is_dir()}
    for kind, folder in (("masks", out_dir), ("overlays", overlay_dir)):
        if folder is not None and os.path.realpath(folder) in input_folders:
            option = OUTPUT_OPTIONS[kind]
            raise ValueError(
                f"{option} {os.fspath(folder)!r} is also an input folder: its files would be overwritten or read as "
                f"photos on the next run; choose another {option} folder"
            )
    photos = {os.path.realpath(p) for p in paths}
    for path in paths:
        for kind, target in output_files(path, out_dir, overlay_dir, mask_format).items():
            if os.path.realpath(target) in photos:
                option = OUTPUT_OPTIONS[kind]
                raise ValueError(
                    f"{option} {str(target.parent)!r}: the output of {str(path)!r} would overwrite the input photo "
                    f"{str(target)!r}; choose another {option} folder"
                )
