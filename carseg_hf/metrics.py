"""Segmentation metrics for binary masks: per-image dice, IoU, precision, recall, in numpy and batched torch.

Every input is binarised as `!= 0`, so 0/1 and 0/255 masks give the same scores, and scores stay in [0, 1].
Conventions for empty masks: dice and IoU are 1 when prediction and target are both empty; precision is 1 when
nothing is predicted, recall is 1 when there is nothing to find.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def _binary_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction of shape {pred.shape} and target of shape {target.shape} differ; "
            "resize the prediction to the target's size first"
        )
    return pred != 0, target != 0


def confusion_counts(pred: np.ndarray, target: np.ndarray) -> dict[str, int]:
    """Count true/false positives and negatives.

    Args:
        pred: Predicted mask, any shape; nonzero is car.
        target: Ground-truth mask of the same shape.

    Returns:
        `{"tp": ..., "fp": ..., "fn": ..., "tn": ...}` as Python ints.

    Raises:
        ValueError: If the shapes differ.
    """
    pred, target = _binary_pair(pred, target)
    tp = int(np.count_nonzero(pred & target))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(target)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(pred.size) - tp - fp - fn}


def _ratio(numerator: int, denominator: int) -> float:
    return 1.0 if denominator == 0 else numerator / denominator


def scores_from_counts(counts: dict[str, int]) -> dict[str, float]:
    """Dice, IoU, precision and recall from confusion counts (see the module docstring for empty masks)."""
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
    }


def dice_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice coefficient `2|P∩T| / (|P| + |T|)`; 1.0 when both masks are empty."""
    return scores_from_counts(confusion_counts(pred, target))["dice"]


def iou_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union `|P∩T| / |P∪T|`; 1.0 when both masks are empty."""
    return scores_from_counts(confusion_counts(pred, target))["iou"]


def precision_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Precision `TP / (TP + FP)`; 1.0 when nothing is predicted."""
    return scores_from_counts(confusion_counts(pred, target))["precision"]


def recall_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Recall `TP / (TP + FN)`; 1.0 when the target is empty."""
    return scores_from_counts(confusion_counts(pred, target))["recall"]


def mean_dice(preds: Iterable[np.ndarray], targets: Iterable[np.ndarray]) -> float:
    """The Carvana metric: dice per image, averaged over images.

    Args:
        preds: Predicted masks.
        targets: Ground-truth masks, one per prediction.

    Returns:
        The mean dice.

    Raises:
        ValueError: If the counts differ, there are no images, or a pair's shapes differ.
    """
    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
        raise ValueError(f"got {len(preds)} predictions but {len(targets)} targets")
    if not preds:
        raise ValueError("mean_dice needs at least one image")
    return float(np.mean([dice_score(p, t) for p, t in zip(preds, targets)]))


def batch_confusion(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image confusion counts on the tensors' device.

    The result holds integer sums, so gathering it across processes (e.g. `accelerator.gather_for_metrics`) and
    computing dice afterwards gives exactly the single-process figures.

    Args:
        pred: Predicted masks of shape `(batch, height, width)`; nonzero is car.
        target: Ground-truth masks of the same shape.

    Returns:
        An int64 tensor of shape `(batch, 4)` with columns (tp, fp, fn, tn).

    Raises:
        ValueError: If the shapes differ or are not 3-D.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"batch_confusion expects prediction and target of the same shape (batch, height, width), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred = (pred != 0).flatten(1)  # (batch, height * width)
    target = (target != 0).flatten(1)  # (batch, height * width)
    tp = (pred & target).sum(dim=1)
    fp = pred.sum(dim=1) - tp
    fn = target.sum(dim=1) - tp
    tn = pred.shape[1] - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=1).long()  # (batch, 4)


def dice_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Dice from (tp, fp, fn, tn) counts; 1 where prediction and target are both empty.

    Args:
        counts: A tensor of shape `(..., 4)`, e.g. the output of [`batch_confusion`].

    Returns:
        A float tensor of shape `(...)`.
    """
    counts = counts.double()
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), torch.ones_like(denominator))
