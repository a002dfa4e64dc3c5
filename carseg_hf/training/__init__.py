"""Training of carseg models with Accelerate and HF Datasets: the library behind `carseg train`.

`training/train.py` in the repository (for `accelerate launch training/train.py ...`) and `carseg train` both call
`parse_args` and `main` from here. The modules:

- `arguments`: `TrainingArguments`, the options as a dataclass that validates itself (no torch);
- `argument_parser`: `build_parser` and `parse_args`, kebab-case options with snake_case aliases (no torch);
- `augmentation_config`: the augmentation strengths and their defaults (no torch);
- `trainer`: `main`, which runs the sections in order: `run_setup`, `data_pipeline`, `model_builder`,
  `optimization`, `resume`, `epoch`, `validation` and `finish`, sharing a `run_state.TrainingRun`;
- `augment`, `checkpoint_format`, `checkpointing`, `plotting`, `pretrained_encoder`: the building blocks.

`main` is imported on first use, so that parsing the arguments (and `--help`) does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports
from .argument_parser import build_parser, parse_args
from .arguments import TrainingArguments

if TYPE_CHECKING:
    from .trainer import main

__all__ = ["TrainingArguments", "build_parser", "main", "parse_args"]

__getattr__, __dir__ = lazy_exports(__name__, {"main": "trainer"}, globals())
