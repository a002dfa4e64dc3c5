"""`carseg export --onnx`: export a model to ONNX with dynamic batch and spatial sizes, optionally verified."""

from __future__ import annotations

import argparse

from ..number_ranges import whole_number_type
from ..sizes import MIN_INPUT_SIDE


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `carseg export`."""
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX (dynamic batch, height and width) and verify it in onnxruntime",
        description="Export a carseg model's logits to ONNX with dynamic batch, height and width.",
    )
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: $CARSEG_MODEL or bundled)")
    parser.add_argument("--revision", default=None, help="Hub revision to pin")
    parser.add_argument(
        "--opset",
        type=int,
        default=18,
        help="ONNX opset version, from 18 to the newest the installed onnx writes (default: 18)",
    )
    size_help = f"example input {{}} (at least {MIN_INPUT_SIDE}; default: the processor's)"
    side = whole_number_type(MIN_INPUT_SIDE)  # a side of the network's input (`sizes.is_input_side`)
    parser.add_argument("--height", type=side, default=None, help=size_help.format("height"))
    parser.add_argument("--width", type=side, default=None, help=size_help.format("width"))
    parser.add_argument(
        "--verify",
        action="store_true",
        help="compare onnxruntime with PyTorch at the example size and at a size off the padding divisor",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run `carseg export`; returns 1 when verification finds masks that disagree on more than 0.1% of pixels.

    The target, the opset and the example size are checked before the export (minutes on a CPU) runs; the first two
    before the model is loaded.
    """
    from ..export_onnx import (
        check_example_size,
        check_onnx_target,
        check_opset,
        export_onnx,
        off_divisor_size,
        verify_onnx,
    )
    from ..loading import load_model

    if not args.onnx.lower().endswith(".onnx"):
        raise ValueError(f"--onnx must name a .onnx file, got {args.onnx!r}")
    check_onnx_target(args.onnx)
    check_opset(args.opset)
    model, processor = load_model(args.model, device="cpu", revision=args.revision)
    height = processor.size["height"] if args.height is None else args.height
    width = processor.size["width"] if args.width is None else args.width
    check_example_size(height, width)
    print(
        f"exporting to {args.onnx} at an example input of {height}x{width} with torch's dynamo exporter; this takes "
        "minutes on a CPU",
        flush=True,
    )
    path = export_onnx(model, args.onnx, height=height, width=width, opset=args.opset)
    size = path.stat().st_size / 2**20
    # export_onnx read the file back and refused any opset but the one asked for, so that is the one written
    print(f"wrote {path} ({size:.1f} MiB), opset {args.opset}, dynamic batch/height/width")
    if not args.verify:
        return 0
    divisor = model.config.size_divisor
    shapes = [(2, height, width), (1, off_divisor_size(height, divisor), off_divisor_size(width, divisor))]
    result = verify_onnx(path, model, shapes, threshold=processor.threshold)
    print(result.format())
    print(f"max abs logit diff {result.max_abs_diff:.3g}, mask agreement {result.mask_agreement:.6%}")
    return 0 if result.mask_agreement >= 0.999 else 1
