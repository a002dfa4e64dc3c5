"""Metrics on hand-computed cases, empty-mask conventions and torch/numpy agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carseg_hf.metrics import (
    batch_confusion,
    confusion_counts,
    dice_from_counts,
    dice_score,
    iou_score,
    mean_dice,
    precision_score,
    recall_score,
)

# 2x4 masks: pred has 3 pixels, target 4 pixels, 2 in common -> tp 2, fp 1, fn 2, tn 3.
PRED = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.uint8)
TARGET = np.array([[0, 1, 1, 0], [0, 0, 1, 1]], dtype=np.uint8)


def test_hand_computed_case():
    assert confusion_counts(PRED, TARGET) == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    assert dice_score(PRED, TARGET) == pytest.approx(4 / 7)
    assert iou_score(PRED, TARGET) == pytest.approx(2 / 5)
    assert precision_score(PRED, TARGET) == pytest.approx(2 / 3)
    assert recall_score(PRED, TARGET) == pytest.approx(2 / 4)


def test_0_255_masks_score_like_0_1():
    assert dice_score(PRED * 255, TARGET) == pytest.approx(4 / 7)
    assert 0.0 <= dice_score(PRED * 255, TARGET * 255) <= 1.0


def test_empty_and_perfect_cases():
    empty = np.zeros((3, 3), dtype=np.uint8)
    full = np.ones((3, 3), dtype=np.uint8)
    assert dice_score(empty, empty) == 1.0
    assert iou_score(empty, empty) == 1.0
    assert dice_score(full, full) == 1.0
    assert dice_score(empty, full) == 0.0
    assert dice_score(full, empty) == 0.0
    assert precision_score(empty, full) == 1.0 and recall_score(empty, full) == 0.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(4, 2\)"):
        dice_score(PRED, TARGET.reshape(4, 2))


def test_mean_dice_is_mean_of_per_image():
    empty = np.zeros_like(PRED)
    assert mean_dice([PRED, empty, PRED], [TARGET, empty, PRED]) == pytest.approx((4 / 7 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        mean_dice([PRED, PRED], [TARGET])


def test_torch_matches_numpy():
    rng = np.random.default_rng(0)
    preds = rng.random((6, 9, 11)) < 0.5
    targets = rng.random((6, 9, 11)) < 0.5
    preds[1] = targets[1] = False  # empty/empty
    preds[2] = False  # empty prediction, non-empty target
    counts = batch_confusion(torch.from_numpy(preds), torch.from_numpy(targets.astype(np.int64)))
    assert counts.dtype == torch.int64 and counts.shape == (6, 4)
    for index in range(6):
        expected = confusion_counts(preds[index], targets[index])
        assert counts[index].tolist() == [expected["tp"], expected["fp"], expected["fn"], expected["tn"]]
    dice = dice_from_counts(counts)
    np.testing.assert_allclose(dice.numpy(), [dice_score(p, t) for p, t in zip(preds, targets)])
    assert dice[1].item() == 1.0 and dice[2].item() == 0.0


def test_gathered_counts_give_same_dice():
    # Concatenating per-process counts (what gather_for_metrics does) equals computing them in one process.
    rng = np.random.default_rng(1)
    preds = torch.from_numpy(rng.random((4, 5, 5)) < 0.5)
    targets = torch.from_numpy(rng.random((4, 5, 5)) < 0.5)
    whole = batch_confusion(preds, targets)
    parts = torch.cat([batch_confusion(preds[:2], targets[:2]), batch_confusion(preds[2:], targets[2:])])
    assert torch.equal(whole, parts)
    assert dice_from_counts(whole).mean().item() == pytest.approx(mean_dice(preds.numpy(), targets.numpy()))


def test_batch_confusion_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        batch_confusion(torch.zeros(2, 3, 3), torch.zeros(2, 3, 4))
