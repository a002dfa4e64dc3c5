"""Export a carseg model to ONNX with dynamic batch and spatial sizes, and verify it in onnxruntime.

The export uses torch's dynamo exporter (it needs the `onnxscript` package). Unlike the legacy tracer, which freezes
Python shape tests, it keeps the model's internal padding to a multiple of `config.size_divisor` symbolic, so one
exported file serves every height and width; `verify_onnx` checks this at a size that is not a multiple of the
divisor and differs from the size used for the export.

The export checks its target, example size and opset before it runs, and writes through `save_verified`: a failed or
interrupted save leaves an earlier file in place.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .modeling_carseg import CarSegForSemanticSegmentation
from .output_folders import output_file_problem
from .sizes import check_input_size, is_whole_number

#: Names of the graph's input and output.
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"

#: The oldest opset the export writes: torch's dynamo exporter has no implementations for older ones.
MIN_OPSET = 18


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


def supported_opsets() -> tuple[int, int]:
    """The oldest and newest opset the export can write: `MIN_OPSET` and the installed onnx's newest."""
    import onnx

    return MIN_OPSET, onnx.defs.onnx_opset_version()


def check_opset(opset: object) -> None:
    """Refuse an opset the installed exporter cannot write (it would log an error and write another opset).

    Raises:
        ValueError: Giving the supported range.
    """
    oldest, newest = supported_opsets()
    if not is_whole_number(opset) or not oldest <= opset <= newest:
        raise ValueError(
            f"opset {opset} is not supported: the dynamo exporter with the installed onnx writes opsets "
            f"{oldest}..{newest}"
        )


def check_example_size(height: object, width: object) -> None:
    """Refuse an example input the export cannot use: too small a side, or too many pixels.

    Raises:
        ValueError: Naming the size and the limits (`sizes.check_input_size`).
    """
    check_input_size(
        height,
        width,
        "the example input",
        advice="the exported file takes any size at run time, so export at the processor's size",
    )


def check_onnx_target(path: str | os.PathLike) -> None:
    """Refuse an ONNX path that cannot be written, before the export (minutes on a CPU) runs.

    Refused: a folder, a path under a file, a read-only file (treated as protected, even for a user such as root whom
    the file system would let replace it), and a folder this user may not write in.

    Args:
        path: The `.onnx` file to write.

    Raises:
        ValueError: Naming the path, what is wrong with it and what to do.
    """
    problem = output_file_problem(path, "the ONNX file", expected="a FILE.onnx path")
    if problem is not None:
        raise ValueError(problem)


def written_opset(path: str | os.PathLike) -> int:
    """The default-domain opset of an ONNX file, after checking that the file is a whole, valid model.

    Raises:
        ValueError: If the file does not parse or pass onnx's checker, naming the file.
    """
    import onnx

    try:
        onnx.checker.check_model(os.fspath(path))  # parses the file (and its external data) and checks the graph
        model = onnx.load(os.fspath(path), load_external_data=False)
    except onnx.checker.ValidationError as error:
        raise ValueError(f"{path} is not a valid ONNX model: {error}") from error
    versions = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not versions:
        raise ValueError(f"{path} imports no ONNX opset")
    return versions[0]


def save_verified(path: str | os.PathLike, save: Callable[[Path], object], opset: int) -> None:
    """Write an ONNX file beside `path`, and move it into place only once it reads back whole with `opset`.

    `save(staged)` writes the model to `staged`, a file with `path`'s name in a new hidden folder beside `path`.
    The folder, rather than a renamed temporary file, keeps a model over the exporter's size threshold valid: its
    weights go to `<name>.data` beside it, a name recorded inside the `.onnx`. Once the staged file passes
    `written_opset`, that `.data` file and then the `.onnx` are renamed into place (within one file system, atomic).
    On any failure or interruption `path` is left as it was, and the staging folder is removed whatever happens.

    Args:
        path: The `.onnx` file to write; its folder must exist.
        save: Writes the model to the path it is given.
        opset: The opset the file must have.

    Raises:
        OSError: If the save fails (a full disk, a file size limit), naming `path`.
        ValueError: If the written file is not a valid ONNX model, or has another opset, naming `path`.
    """
    path = Path(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    staged = staging / path.name
    unchanged = f"{path} was left as it was" if path.exists() else f"{path} was not created"
    try:
        try:
            save(staged)
        except OSError as error:
            raise OSError(f"could not write the ONNX file {path}: {error.strerror or error}; {unchanged}") from error
        try:
            written = written_opset(staged)
        except ValueError as error:
            raise ValueError(f"the ONNX file written for {path} does not read back ({error}); {unchanged}") from error
        if written != opset:
            raise ValueError(
                f"the exporter wrote opset {written}, not the requested {opset} (its conversion failed, see the "
                f"messages above); {unchanged}"
            )
        for extra in staging.iterdir():  # external weights first: the .onnx that names them arrives last
            if extra != staged:
                os.replace(extra, path.parent / extra.name)
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_onnx(
    model: CarSegForSemanticSegmentation,
    path: str | os.PathLike,
    height: int = 256,
    width: int = 256,
    opset: int = MIN_OPSET,
    verbose: bool = False,
) -> Path:
    """Export the model's logits to ONNX with dynamic batch, height and width.

    The target, the example size and the opset are checked before the export runs. The file is written through
    `save_verified`, so a failed or interrupted export leaves an earlier file at `path` as it was.

    Args:
        model: The model; it is exported in eval mode, on the CPU, in float32.
        path: The `.onnx` file to write (parent folders are created).
        height: Height of the example input used for the export (any size works at run time); see
            `check_example_size`.
        width: Width of the example input.
        opset: ONNX opset version, from `MIN_OPSET` to the installed onnx's newest (`supported_opsets`).
        verbose: Show the exporter's progress messages.

    Returns:
        The written path.

    Raises:
        ImportError: If `onnxscript` (needed by the dynamo exporter) is missing.
        ValueError: If the target cannot be written, the example size or the opset is out of range, or the written
            file does not read back with the requested opset.
        OSError: If writing the file fails.
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError("ONNX export needs the onnxscript package: pip install onnxscript onnx") from error
    check_example_size(height, width)
    check_opset(opset)
    check_onnx_target(path)
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
        save_verified(path, lambda staged: program.save(os.fspath(staged)), opset)
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
