"""Tests of the ONNX export: dynamic batch and spatial sizes, verified in onnxruntime against PyTorch."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from carseg_hf import CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.cli import main as cli_main
from carseg_hf.commands import export as export_command
from carseg_hf.export_onnx import (
    export_onnx,
    off_divisor_size,
    save_verified,
    supported_opsets,
    verify_onnx,
    written_opset,
)
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
    assert ", opset 18, " in out and written_opset(path) == 18  # the opset read back from the file
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []  # no staging left behind


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


def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli_main(argv)
    return code, capsys.readouterr().err


def test_export_command_refuses_an_opset_it_cannot_write_before_loading(tmp_path, capsys):
    oldest, newest = supported_opsets()
    for opset in (oldest - 1, newest + 1):
        target = tmp_path / "m.onnx"
        argv = ["export", "--onnx", str(target), "--model", str(tmp_path / "no-such-model"), "--opset", str(opset)]
        code, err = _run_cli(argv, capsys)
        assert code == 2 and f"opset {opset} is not supported" in err and f"{oldest}..{newest}" in err
        assert not target.exists()


@pytest.mark.parametrize("kind", ["folder", "under a file", "read-only"])
def test_export_command_checks_the_target_before_loading_the_model(tmp_path, kind):
    (tmp_path / "afile").write_text("not a folder")
    target = {"folder": tmp_path / "d.onnx", "under a file": tmp_path / "afile" / "m.onnx"}.get(kind)
    if kind == "folder":
        target.mkdir()
    if kind == "read-only":
        target = tmp_path / "kept.onnx"
        target.write_bytes(b"an earlier export")
        target.chmod(0o444)
    args = _parser().parse_args(["export", "--onnx", str(target), "--model", str(tmp_path / "no-such-model")])
    expected = {"folder": "it is a folder", "under a file": "is a file", "read-only": "read-only"}[kind]
    with pytest.raises(ValueError, match=expected) as error:
        args.func(args)  # a model check first would raise FileNotFoundError for the missing model instead
    assert str(target) in str(error.value)
    if kind == "read-only":
        assert target.read_bytes() == b"an earlier export"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_export_refuses_a_folder_it_may_not_write_in(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    args = _parser().parse_args(["export", "--onnx", str(folder / "m.onnx"), "--model", str(tmp_path / "none")])
    with pytest.raises(ValueError, match="no permission to write"):
        args.func(args)


@pytest.mark.parametrize("side", ["0", "31", "-5", "abc"])
def test_export_command_refuses_a_tiny_or_malformed_example_side(side, capsys):
    for option in ("--height", "--width"):
        with pytest.raises(SystemExit) as error:
            _parser().parse_args(["export", "--onnx", "m.onnx", option, side])
        assert error.value.code == 2 and f"argument {option}" in capsys.readouterr().err


def test_export_command_refuses_an_example_input_over_the_pixel_limit(exported, tmp_path):
    target = tmp_path / "big.onnx"
    argv = ["export", "--onnx", str(target), "--model", str(exported[4]), "--height", "6000", "--width", "6000"]
    args = _parser().parse_args(argv)
    with pytest.raises(ValueError, match=r"6000x6000 is 36,000,000 pixels, over the limit of 30,000,000"):
        args.func(args)
    assert not target.exists()


def test_export_onnx_checks_its_arguments_before_exporting(exported, tmp_path):
    model = exported[0]
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(ValueError, match="it is a folder"):
        export_onnx(model, tmp_path / "d.onnx")
    with pytest.raises(ValueError, match="at least 32"):
        export_onnx(model, tmp_path / "m.onnx", height=1, width=64)
    with pytest.raises(ValueError, match="opset 99 is not supported"):
        export_onnx(model, tmp_path / "m.onnx", opset=99)


def _earlier_export(folder, exported) -> tuple:
    """`folder/m.onnx` holding a good earlier export, and its bytes."""
    good = exported[1].read_bytes()
    target = folder / "m.onnx"
    target.write_bytes(good)
    return target, good


def test_a_failed_save_leaves_the_earlier_file_and_names_it(exported, tmp_path):
    target, good = _earlier_export(tmp_path, exported)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(good) // 4, limits[1]))  # a real "File too large" mid-write
    try:
        with pytest.raises(OSError, match="File too large") as error:
            save_verified(target, lambda staged: staged.write_bytes(good), opset=18)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    assert f"could not write the ONNX file {target}" in str(error.value)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # the staging folder is gone


def test_a_corrupt_or_wrong_opset_file_is_not_moved_into_place(exported, tmp_path):
    target, good = _earlier_export(tmp_path, exported)
    with pytest.raises(ValueError, match="does not read back") as error:
        save_verified(target, lambda staged: staged.write_bytes(good[: len(good) // 2]), opset=18)
    assert str(target) in str(error.value) and "left as it was" in str(error.value)
    with pytest.raises(ValueError, match="wrote opset 18, not the requested 19"):
        save_verified(target, lambda staged: staged.write_bytes(good), opset=19)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_external_weights_move_with_the_model(exported, tmp_path):
    proto = onnx.load(str(exported[1]))
    target = tmp_path / "big.onnx"

    def save_with_external_data(staged):  # as the exporter saves a model over its size threshold
        onnx.save_model(
            proto, str(staged), save_as_external_data=True, location=f"{staged.name}.data", size_threshold=4096
        )

    save_verified(target, save_with_external_data, opset=18)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    assert (tmp_path / "big.onnx.data").stat().st_size > 10_000  # the weights are outside the .onnx
    pixels = np.random.default_rng(0).standard_normal((1, 3, 48, 80), dtype=np.float32)
    outputs = [
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": pixels})
        for path in (target, exported[1])
    ]
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
