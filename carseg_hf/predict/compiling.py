"""`torch.compile` of a batch prediction run's model (`PredictOptions.compile`)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def compile_for_inference(model: torch.nn.Module, compile_mode: str, device: torch.device) -> Callable:
    """The model under `torch.compile` with static shapes.

    Args:
        model: The run's private, eval-mode copy of the network; its weights must not change afterwards.
        compile_mode: `"default"` or `"max-autotune"` (`PredictOptions.compile`).
        device: Where the model runs.

    Returns:
        The compiled model.
    """
    mode = None if compile_mode == "default" else compile_mode
    if device.type != "cpu":
        return torch.compile(model, mode=mode, dynamic=False)
    # Freezing turns the weights into graph constants, so inductor prepacks them for oneDNN and fuses the ReLUs
    # into the convolutions. The compiled model is the predictor's private copy; its weights never change after
    # this point.
    from torch._inductor import list_mode_options

    compile_options = {"freezing": True}
    if mode is not None:
        compile_options.update(list_mode_options(mode))
    return torch.compile(model, options=compile_options, dynamic=False)
