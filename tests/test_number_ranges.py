"""The one `LOW,HIGH` parser behind `--resolution-scale-range` and `--car-width`."""

from __future__ import annotations

import argparse

import pytest

from carseg_hf.number_ranges import number_range_type, parse_number_range, whole_number_type


def _unit_interval(pair: tuple[float, float]) -> tuple[float, float]:
    low, high = pair
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"must satisfy 0 <= low <= high <= 1, got {pair}")
    return pair


def test_parse_number_range_splits_two_numbers_and_names_the_example_otherwise():
    assert parse_number_range("0.25,1e-1", "0.1,0.9") == (0.25, 0.1)  # bounds are the caller's check
    assert parse_number_range(" 2 , 3 ", "0.1,0.9") == (2.0, 3.0)
    with pytest.raises(ValueError, match=r"expected LOW,HIGH such as 0.1,0.9, got '1,2,3'"):
        parse_number_range("1,2,3", "0.1,0.9")
    with pytest.raises(ValueError, match=r"expected two numbers LOW,HIGH such as 0.1,0.9, got 'x,1'"):
        parse_number_range("x,1", "0.1,0.9")


def test_number_range_type_applies_the_check_and_reports_usage_errors_through_argparse(capsys):
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--band", type=number_range_type(_unit_interval, "0.2,0.8"))
    assert parser.parse_args(["--band", "0.2,0.8"]).band == (0.2, 0.8)
    for bad, reason in (("0.9,0.2", "0 <= low <= high <= 1"), ("0.5", "such as 0.2,0.8"), ("a,b", "two numbers")):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["--band", bad])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and "--band" in error and reason in error, (bad, error)


def test_whole_number_type_checks_the_bounds_while_parsing(capsys):
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--count", type=whole_number_type(1))
    parser.add_argument("--stamps", type=whole_number_type(0, 20))
    assert parser.parse_args(["--count", "7", "--stamps", "20"]) == argparse.Namespace(count=7, stamps=20)
    for argv, message in (
        (["--count", "0"], "argument --count: must be >= 1, got 0"),
        (["--count", "1.5"], "argument --count: expected a whole number >= 1, got '1.5'"),
        (["--stamps", "21"], "argument --stamps: must lie in 0..20, got 21"),
        (["--stamps", "-1"], "argument --stamps: must lie in 0..20, got -1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
