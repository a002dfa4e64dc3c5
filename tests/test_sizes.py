import argparse

import pytest

from carseg_hf.sizes import check_input_size, height_width_type, parse_height_width


def test_height_comes_first():
    assert parse_height_width("1280x1918") == (1280, 1918)
    assert parse_height_width(" 64X96 ") == (64, 96)


@pytest.mark.parametrize("text", ["1918", "12x", "x12", "axb", "1x2x3", "-4x8", ""])
def test_malformed_sizes_name_the_form_and_the_text(text):
    with pytest.raises(ValueError, match="HEIGHTxWIDTH") as error:
        parse_height_width(text)
    assert repr(text) in str(error.value)


def test_square_shorthand_only_where_allowed():
    assert parse_height_width("512", allow_square=True) == (512, 512)
    with pytest.raises(ValueError, match="one number"):
        parse_height_width("a", allow_square=True)


def test_minimum_is_enforced_on_both_sides():
    assert parse_height_width("16x16", minimum=16) == (16, 16)
    with pytest.raises(ValueError, match="at least 16"):
        parse_height_width("15x640", minimum=16)
    with pytest.raises(ValueError, match="at least 1"):
        parse_height_width("0x4")


def test_argparse_type_reports_a_usage_error(capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--size", type=height_width_type(minimum=16))
    assert parser.parse_args(["--size", "32x48"]).size == (32, 48)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--size", "8x8"])
    assert exit_info.value.code == 2
    assert "at least 16" in capsys.readouterr().err


def test_an_input_side_is_a_whole_number_of_at_least_32_pixels():
    import numpy as np

    from carseg_hf.predict import PredictOptions
    from carseg_hf.sizes import is_input_side

    assert is_input_side(32) and is_input_side(np.int64(640)) and is_input_side(np.uint16(960))
    assert not any(is_input_side(value) for value in (31, 0, -64, 640.0, "640", True, None))
    PredictOptions(resolution=(np.int64(640), 960)).validate()  # the same rule as the image processors'
    for resolution in [(31, 960), (640.0, 960), (640,), "640x960"]:
        with pytest.raises(ValueError, match="--resolution must be"):
            PredictOptions(resolution=resolution).validate()


def test_check_input_size_refuses_a_thin_side_or_too_many_pixels():
    check_input_size(32, 5000, "the input", advice="choose a smaller one")
    for height, width in ((31, 64), (64, 64.0), (True, 64)):
        with pytest.raises(ValueError, match=r"the input must be whole numbers of pixels, each side at least 32"):
            check_input_size(height, width, "the input", advice="choose a smaller one")
    with pytest.raises(ValueError, match=r"--size 6000x6000 is 36,000,000 pixels, over .*; choose a smaller one$"):
        check_input_size(6000, 6000, "--size", advice="choose a smaller one")
