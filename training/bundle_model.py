"""Copy a trained checkpoint into the package as a bundled model: weights, config and processor, without code.

`training/train.py` saves `best/` with `auto_map` and the carseg source files, so that the folder loads with
`trust_remote_code` anywhere. Inside the package the classes are registered by `import carseg_hf`, so a bundled
model keeps only `config.json`, `model.safetensors` and `preprocessor_config.json` (and its model card, written by
hand from measured figures).

`--input-size HEIGHTxWIDTH` sets the processor's resize target in the bundled copy, for weights that segment better
at another input size than the one they were trained at (chosen on validation data). `--keep-aspect-ratio` makes
the bundled processor resize each photo to that many pixels with the photo's own aspect ratio (portrait and square
photos are not squeezed into a landscape input).

A TARGET that already holds a model is replaced only with `--overwrite`; the three files are written under
temporary names and renamed into place one right after another once all are written, so a bundle that fails while
writing leaves TARGET as it was.

Example:
    python -m training.bundle_model runs/stage2/best carseg_hf/pretrained/carseg-lite0 --keep-aspect-ratio --overwrite
    python -m training.bundle_model runs/stage2/best runs/stage2/bundled-768 --input-size 768x1152
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from carseg_hf.atomic_files import write_files_atomically
from carseg_hf.loading import load_model
from carseg_hf.output_folders import output_folder_problem
from carseg_hf.sizes import MIN_INPUT_SIDE, check_input_size, height_width_type

BUNDLED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def _check_target(source: Path, target: Path, overwrite: bool) -> None:
    """Refuse a TARGET that is unusable, is SOURCE, or (without `overwrite`) already holds a model."""
    problem = output_folder_problem(target, "TARGET")
    if problem:
        raise ValueError(problem)
    if target.resolve() == source.resolve():
        raise ValueError(f"TARGET {target} is SOURCE; bundle into another folder")
    held = [name for name in BUNDLED_FILES if (target / name).exists()]
    if held and not overwrite:
        raise ValueError(f"TARGET {target} already holds {', '.join(held)}; name a new folder, or pass --overwrite")


def _bundled_json(
    source_file: Path, input_size: tuple[int, int] | None, keep_aspect_ratio: bool | None
) -> Callable[[Path], object]:
    """A writer of `source_file` without `auto_map` (and, for the processor, with the given size and aspect rule)."""
    content = json.loads(source_file.read_text())
    content.pop("auto_map", None)
    if source_file.name == "preprocessor_config.json" and input_size is not None:
        content["size"] = {"height": input_size[0], "width": input_size[1]}
    if source_file.name == "preprocessor_config.json" and keep_aspect_ratio is not None:
        content["keep_aspect_ratio"] = keep_aspect_ratio
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    return lambda tmp: tmp.write_text(text)


def bundle(
    source: Path,
    target: Path,
    input_size: tuple[int, int] | None = None,
    keep_aspect_ratio: bool | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Copy the checkpoint files of `source` into `target`, dropping `auto_map` from both JSON files.

    Args:
        source: A folder written by `save_pretrained` (e.g. a training run's `best/`).
        target: The bundled model's folder; created if needed.
        input_size: `(height, width)` to write as the processor's `size`; `None` keeps the source's.
        keep_aspect_ratio: The processor's `keep_aspect_ratio` to write; `None` keeps the source's.
        overwrite: Replace the model that `target` already holds.

    Returns:
        The files written (all three replaced together: `write_files_atomically`).

    Raises:
        FileNotFoundError: If `source` lacks one of `BUNDLED_FILES`, naming it.
        ValueError: If `target` is `source`, a file or under one, or holds a model and `overwrite` is false; the input
            size is over `DEFAULT_MAX_PIXELS`; or the weights do not load into the config's network (checked with
            `load_model` before anything is written).
    """
    missing = [name for name in BUNDLED_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} lacks {', '.join(missing)}; expected a folder written by save_pretrained")
    _check_target(source, target, overwrite)
    if input_size is not None:
        check_input_size(*input_size, "--input-size", advice="choose a smaller input size")
    load_model(str(source))  # the weights load, whole, into the network of its config
    writes: dict[Path, Callable[[Path], object]] = {
        target / name: _bundled_json(source / name, input_size, keep_aspect_ratio)
        for name in BUNDLED_FILES
        if name.endswith(".json")
    }
    writes[target / "model.safetensors"] = lambda tmp: shutil.copyfile(source / "model.safetensors", tmp)
    target.mkdir(parents=True, exist_ok=True)
    write_files_atomically({path: _readable(save) for path, save in writes.items()})
    return [target / name for name in BUNDLED_FILES]


def _readable(save: Callable[[Path], object]) -> Callable[[Path], object]:
    """`save`, then make the file readable by all (safetensors and temporary files may be owner-only)."""

    def save_readable(tmp: Path) -> None:
        save(tmp)
        os.chmod(tmp, 0o644)

    return save_readable


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m training.bundle_model SOURCE TARGET [--input-size HxW] [--keep-aspect-ratio]`."""
    parser = argparse.ArgumentParser(prog="python -m training.bundle_model", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a checkpoint folder written by save_pretrained")
    parser.add_argument("target", type=Path, help="the bundled model's folder, e.g. carseg_hf/pretrained/NAME")
    parser.add_argument(
        "--input-size",
        type=height_width_type(minimum=MIN_INPUT_SIDE),
        default=None,
        help="HEIGHTxWIDTH the processor resizes photos to (default: the source's)",
    )
    parser.add_argument(
        "--keep-aspect-ratio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="resize each photo to the input size's pixel count with its own aspect ratio (default: the source's)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the model that TARGET already holds")
    args = parser.parse_args(argv)
    try:
        written = bundle(args.source, args.target, args.input_size, args.keep_aspect_ratio, args.overwrite)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.error(str(error))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
