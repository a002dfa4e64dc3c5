"""Fold inference-mode BatchNorm into the preceding convolution, for faster prediction."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """Return an eval-mode copy of `model` in which each BatchNorm that directly follows a convolution is folded.

    In every `nn.Sequential`, a `Conv2d` immediately followed by a `BatchNorm2d` with running statistics becomes one
    `Conv2d` with adjusted weights and bias, and the BatchNorm becomes `nn.Identity`. This is exact up to float
    rounding in eval mode and saves one full pass over each activation. The input model is left untouched, so it can
    still be trained or saved; the copy must only be used for inference.

    Args:
        model: Any module; carseg's own U-Net and smp decoders use `(conv, BatchNorm, ReLU)` sequences.

    Returns:
        The folded copy (in eval mode, on the input's device) and the number of BatchNorm layers folded.
    """
    folded = copy.deepcopy(model).eval()
    count = 0
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = module._modules[first], module._modules[second]
            if (
                isinstance(conv, nn.Conv2d)
                and type(norm) is nn.BatchNorm2d
                and norm.track_running_stats
                and norm.running_mean is not None
                and conv.out_channels == norm.num_features
            ):
                with torch.no_grad():
                    module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
                count += 1
    return folded, count
