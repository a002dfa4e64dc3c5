"""Export a carseg model to ONNX with dynamic batch and spatial sizes, and verify it in onnxruntime.

The export uses torch's dynamo exporter (it needs the `onnxscript` package). Unlike the legacy tracer, which freezes
Python shape tests, it keeps the model's internal padding to a multiple of `config.size_divisor` symbolic, so one
exported file serves every height and width; `verify_onnx` checks this at a size that is not a multiple of the
divisor and differs from the size used for the export.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .modeling_carseg import CarSegForSemanticSegmentation

#: Names of the graph's input and output.
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"


class _LogitsOnly(nn.Module):
    """Expose `model(pixel_values).logits` as a plain tensor-to-tensor module for the exporter."""

    def __init__(self, model: CarSegForSemanticSegmentation) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits  # (batch, 1, height, width)


@dataclass
class OnnxVerification:
    """Agreement of an ONNX file with the PyTorch model.

    Attributes:
        max_abs_diff: Largest absolute logit difference over every checked input.
        mask_agreement: Smallest fraction of pixels whose thresholded masks agree, over every checked input.
        checks: One `(batch, height, width, max_abs_diff, mask_agreement)` per checked input shape.
    """

    max_abs_diff: float = 0.0
    mask_agreement: float = 1.0
    checks: list[tuple[int, int, int, float, float]] = field(default_factory=list)

    def format(self) -> str:
        """A small printable table."""
        lines = ["batch  height  width  max |logit diff|  mask agreement"]
        for batch, height, width, diff, agreement in self.checks:
            lines.append(f"{batch:5d}  {height:6d}  {width:5d}  {diff:16.3g}  {agreement:14.6%}")
        return "\n".join(lines)


def export_onnx(
    model: CarSegForSemanticSegmentation,
    path: str | os.PathLike,
    height: int = 256,
    width: int = 256,
    opset: int = 18,
    verbose: bool = False,
) -> Path:
    """Export the model's logits to ONNX with dynamic batch, height and width.

    Args:
        model: The model; it is exported in eval mode, on the CPU, in float32.
        path: The `.onnx` file to write (parent folders are created).
        height: Height of the example input used for the export (any size works at run time).
        width: Width of the example input.
        opset: ONNX opset version (18 or newer).
        verbose: Show the exporter's progress messages.

    Returns:
        The written path.

    Raises:
        ImportError: If `onnxscript` (needed by the dynamo exporter) is missing.
        ValueError: If the example size or the opset is out of range.
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError("ONNX export needs the onnxscript package: pip install onnxscript onnx") from error
    if height < 2 or width < 2:
        raise ValueError(f"the example input must be at least 2x2, got {height}x{width}")
    if opset < 18:
        raise ValueError(f"the dynamo exporter needs opset 18 or newer, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _LogitsOnly(model).to("cpu").float().eval()
    example = torch.randn(2, model.config.num_channels, height, width)  # (batch, channels, height, width)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet, torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"pixel_values": dims},
            opset_version=opset,
            dynamo=True,
            verbose=verbose,
        )
        program.save(os.fspath(path))
    return path


def off_divisor_size(size: int, divisor: int) -> int:
    """A size different from `size`, larger than `divisor` and not a multiple of it (exercises the padding)."""
    other = max(divisor + 1, (3 * size) // 4 + 1)
    while other % divisor == 0 or other == size:
        other += 1
    return other


def verify_onnx(
    path: str | os.PathLike,
    model: CarSegForSemanticSegmentation,
    shapes: list[tuple[int, int, int]],
    threshold: float = 0.5,
    seed: int = 0,
) -> OnnxVerification:
    """Run the ONNX file in onnxruntime and the model in PyTorch on the same random inputs, and compare.

    Args:
        path: The exported `.onnx` file.
        model: The PyTorch model it was exported from.
        shapes: `(batch, height, width)` of each input to check; include a size that is not a multiple of
            `model.config.size_divisor` to check that the padding was exported symbolically.
        threshold: Probability threshold for the mask agreement.
        seed: Seed of the random inputs.

    Returns:
        The largest logit difference and the smallest mask agreement, with one row per shape.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    module = _LogitsOnly(model).to("cpu").float().eval()
    logit_threshold = math.log(threshold / (1.0 - threshold))
    generator = torch.Generator().manual_seed(seed)
    result = OnnxVerification()
    for batch, height, width in shapes:
        pixel_values = torch.randn(batch, model.config.num_channels, height, width, generator=generator)
        with torch.inference_mode():
            expected = module(pixel_values).numpy()  # (batch, 1, height, width)
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values.numpy()})[0]  # (batch, 1, height, width)
        if actual.shape != expected.shape:
            raise ValueError(f"ONNX output shape {actual.shape} differs from PyTorch's {expected.shape}")
        diff = float(np.abs(actual - expected).max())
        agreement = float(((actual > logit_threshold) == (expected > logit_threshold)).mean())
        result.checks.append((batch, height, width, diff, agreement))
        result.max_abs_diff = max(result.max_abs_diff, diff)
        result.mask_agreement = min(result.mask_agreement, agreement)
    return result
