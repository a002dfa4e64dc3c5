"""How often the converted ImageNet encoder names a car among its top 5 classes, over a folder of photos.

Checks the conversion of `carseg_hf.training.pretrained_encoder` on real images: a wrong key mapping or padding gives
unrelated classes. Example:

    python benchmarks/check_encoder_imagenet.py --images path/to/carvana/train
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from carseg_hf.image_io import IMAGE_EXTENSIONS, PAIR_MASK_SUFFIX, load_rgb  # noqa: E402
from carseg_hf.number_ranges import whole_number_type  # noqa: E402
from carseg_hf.training.pretrained_encoder import (  # noqa: E402
    IMAGENET_CAR_CLASSES,
    PRETRAINED_ENCODERS,
    imagenet_classifier,
    imagenet_top5,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; the photos to classify go to `args.paths` (a folder without any is a usage error)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="a folder of photos (.jpg, .png, ...)")
    parser.add_argument("--encoder", choices=sorted(PRETRAINED_ENCODERS), default="efficientnet-lite0")
    parser.add_argument("--limit", type=whole_number_type(1), help="use only the first N photos")
    args = parser.parse_args(argv)
    if not args.images.is_dir():
        parser.error(f"--images {args.images} is not a folder")
    paths = sorted(p for p in args.images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    args.paths = [p for p in paths if not p.stem.endswith(PAIR_MASK_SUFFIX)][: args.limit]
    if not args.paths:
        parser.error(
            f"--images {args.images} holds no photos ({', '.join(IMAGE_EXTENSIONS)}; files named "
            f"*{PAIR_MASK_SUFFIX}.* are masks, not photos)"
        )
    return args


def main(args: argparse.Namespace) -> dict[str, float]:
    """Classify every photo of `parse_args` and print how often a car class is top 1 and in the top 5."""
    paths = args.paths
    classifier = imagenet_classifier(args.encoder)
    top1 = collections.Counter()
    in_top1 = in_top5 = 0
    for path in paths:
        names = imagenet_top5(classifier, load_rgb(path), args.encoder)
        top1[names[0]] += 1
        in_top1 += names[0] in IMAGENET_CAR_CLASSES
        in_top5 += any(name in IMAGENET_CAR_CLASSES for name in names)
    result = {"images": len(paths), "car_top1": in_top1 / len(paths), "car_top5": in_top5 / len(paths)}
    print(f"{args.encoder}: {len(paths)} photos from {args.images}")
    print(
        f"a car class is top 1 for {in_top1}/{len(paths)} ({result['car_top1']:.1%}), in the top 5 for "
        f"{in_top5}/{len(paths)} ({result['car_top5']:.1%})"
    )
    print("most frequent top-1 classes: " + ", ".join(f"{name} ({n})" for name, n in top1.most_common(6)))
    return result


if __name__ == "__main__":
    main(parse_args())
    sys.exit(0)
