"""Tests of the ONNX export: dynamic batch and spatial sizes, verified in onnxruntime against PyTorch."""

from __future__ import annotations

import argparse
import contextlib
import io

import onnx
import pytest
import torch

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.commands import export as export_command
from carseg_hf.export_onnx import off_divisor_size, verify_onnx
from tests.conftest import tiny_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    export_command.add_parser(parser.add_subparsers())
    return parser


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model saved with a 48x80 processor and exported once through `carseg export --verify`."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    model = CarSegForSemanticSegmentation(tiny_config()).eval()
    model.save_pretrained(folder)
    CarSegImageProcessor(size={"height": 48, "width": 80}).save_pretrained(folder)
    path = folder / "tiny.onnx"
    args = _parser().parse_args(["export", "--onnx", str(path), "--model", str(folder), "--verify"])
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = args.func(args)
    return model, path, code, stdout.getvalue(), folder


def test_export_command_writes_and_verifies(exported):
    _, path, code, out, _ = exported
    assert code == 0 and path.is_file()
    assert "max abs logit diff" in out and "mask agreement" in out
    assert "   48     80" in out  # the example size; a size off the padding divisor follows
    assert len([line for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]) == 2


def test_export_has_dynamic_batch_and_spatial_axes(exported):
    path = exported[1]
    graph = onnx.load(str(path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert graph.input[0].name == "pixel_values" and graph.output[0].name == "logits"
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # batch, 3, height, width
    assert dims[1].dim_value == 3


def test_onnxruntime_matches_pytorch_at_other_sizes(exported):
    model, path = exported[:2]
    divisor = model.config.size_divisor
    other = (off_divisor_size(48, divisor), off_divisor_size(80, divisor))
    assert other[0] % divisor and other[1] % divisor and other != (48, 80)
    shapes = [(2, 48, 80), (3, *other), (1, 37, 129)]
    result = verify_onnx(path, model, shapes)
    assert [check[:3] for check in result.checks] == shapes
    assert result.max_abs_diff < 1e-3
    assert result.mask_agreement >= 0.999


def test_verification_detects_a_different_model(exported):
    path = exported[1]
    torch.manual_seed(1)
    other = CarSegForSemanticSegmentation(tiny_config()).eval()
    result = verify_onnx(path, other, [(1, 48, 80)])
    assert result.max_abs_diff > 1e-2 and result.mask_agreement < 0.999


def test_export_command_refuses_a_wrong_suffix(exported, tmp_path):
    args = _parser().parse_args(["export", "--onnx", str(tmp_path / "m.bin"), "--model", str(exported[4])])
    with pytest.raises(ValueError, match=r"\.onnx"):
        args.func(args)
