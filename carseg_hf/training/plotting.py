"""The training-curve figure: training loss and validation dice per epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_training_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Save a PNG with the training loss and the validation dice against the epoch.

    Args:
        history: One entry per validation with `epoch`, `train_loss` and `validation_dice`.
        path: Where to write the PNG.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axis, dice_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [entry["train_loss"] for entry in history], marker="o")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss (BCE + 1 - dice)")
    loss_axis.grid(alpha=0.3)
    dice_axis.plot(epochs, [entry["validation_dice"] for entry in history], marker="o", color="tab:green")
    dice_axis.set_xlabel("epoch")
    dice_axis.set_ylabel("validation dice (mean per image)")
    dice_axis.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
