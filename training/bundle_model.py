"""Copy a trained checkpoint into the package as a bundled model: weights, config and processor, without code.

`training/train.py` saves `best/` with `auto_map` and the carseg source files, so that the folder loads with
`trust_remote_code` anywhere. Inside the package the classes are registered by `import carseg_hf`, so a bundled
model keeps only `config.json`, `model.safetensors` and `preprocessor_config.json` (and its model card, written by
hand from measured figures).

`--input-size HEIGHTxWIDTH` sets the processor's resize target in the bundled copy, for weights that segment better
at another input size than the one they were trained at (chosen on validation data). `--keep-aspect-ratio` makes
the bundled processor resize each photo to that many pixels with the photo's own aspect ratio (portrait and square
photos are not squeezed into a landscape input).

Example:
    python -m training.bundle_model runs/stage2/best carseg_hf/pretrained/carseg-lite0 --keep-aspect-ratio
    python -m training.bundle_model runs/stage2/best runs/stage2/bundled-768 --input-size 768x1152
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from carseg_hf.loading import load_model
from carseg_hf.sizes import MIN_INPUT_SIDE, height_width_type

BUNDLED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def bundle(
    source: Path, target: Path, input_size: tuple[int, int] | None = None, keep_aspect_ratio: bool | None = None
) -> list[Path]:
    """Copy the checkpoint files of `source` into `target`, dropping `auto_map` from both JSON files.

    Args:
        source: A folder written by `save_pretrained` (e.g. a training run's `best/`).
        target: The bundled model's folder; created if needed, its checkpoint files replaced.
        input_size: `(height, width)` to write as the processor's `size`; `None` keeps the source's.
        keep_aspect_ratio: The processor's `keep_aspect_ratio` to write; `None` keeps the source's.

    Returns:
        The files written.

    Raises:
        FileNotFoundError: If `source` lacks one of `BUNDLED_FILES`, naming it.
        ValueError: If `target` is `source` or a file, or the weights do not load into the config's network (checked
            with `load_model` before anything is written).
    """
    missing = [name for name in BUNDLED_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} lacks {', '.join(missing)}; expected a folder written by save_pretrained")
    if target.exists() and not target.is_dir():
        raise ValueError(f"TARGET {target} is a file; expected a folder")
    if target.resolve() == source.resolve():
        raise ValueError(f"TARGET {target} is SOURCE; bundle into another folder")
    load_model(str(source))  # the weights load, whole, into the network of its config
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BUNDLED_FILES:
        destination = target / name
        if name.endswith(".json"):
            content = json.loads((source / name).read_text())
            content.pop("auto_map", None)
            if name == "preprocessor_config.json" and input_size is not None:
                content["size"] = {"height": input_size[0], "width": input_size[1]}
            if name == "preprocessor_config.json" and keep_aspect_ratio is not None:
                content["keep_aspect_ratio"] = keep_aspect_ratio
            destination.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        else:
            shutil.copyfile(source / name, destination)
        destination.chmod(0o644)
        written.append(destination)
    return written


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
    args = parser.parse_args(argv)
    try:
        written = bundle(args.source, args.target, args.input_size, args.keep_aspect_ratio)
    except (FileNotFoundError, ValueError, OSError) as error:
        parser.error(str(error))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
