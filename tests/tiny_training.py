"""TEST HELPERS: the tiny end-to-end training run that the training tests share.

A 3-level U-Net with a handful of channels trains on 3 procedural cars x 4 views at 64x48 (`tests.fixture`);
`--validation-fraction 0.34` holds out one car, so 8 images train and 4 validate. A run of a few steps takes about a
second on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from carseg_hf.training import main, parse_args
from tests.fixture import make_carvana_fixture

#: The options of every tiny run: the network, the split, the batches and the seed.
TINY_TRAINING_ARGS = [
    "--resolution", "48x64", "--encoder_channels", "4,8,16", "--center_channels", "16", "--decoder_convs", "2",
    "--validation_fraction", "0.34", "--train_batch_size", "2", "--eval_batch_size", "3",
    "--dataloader_num_workers", "0", "--seed", "0",
]  # fmt: skip


def make_tiny_carvana(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the 3-car, 4-view, 64x48 data set in Kaggle's layout and return its folder."""
    return make_carvana_fixture(tmp_path_factory.mktemp("carvana"), num_cars=3, angles=4, size=(64, 48), num_test=0)


def tiny_training_argv(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """The command line of a tiny run on `data_dir` into `output_dir`, with `extra` options last."""
    return ["--data_dir", str(data_dir), "--output_dir", str(output_dir), *TINY_TRAINING_ARGS, *extra]


def run_tiny_training(data_dir: Path, output_dir: Path, *extra: str) -> dict:
    """Run `main` on one CPU thread with `tiny_training_argv`; returns its results."""
    torch.set_num_threads(1)
    return main(parse_args(tiny_training_argv(data_dir, output_dir, *extra)))
