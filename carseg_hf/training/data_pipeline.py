"""From an HF dataset of image/mask pairs to training batches, through `CarSegImageProcessor`.

Workers decode with the processor's loaders (so bad files raise errors that name them), resize with the processor's
rule to the training resolution (a pixel budget when the processor keeps the aspect ratio; with a scale range, times a
factor drawn per image and epoch), and augment uint8 tensors; `pad_collate` pads frames of different sizes. Batches
travel as uint8 (4x less than float32 to pin and copy);
`to_model_inputs` rescales and normalises them on the device with the processor's parameters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from carseg_hf.data import entry_source, load_segmentation_dataset
from carseg_hf.image_io import check_mask_size
from carseg_hf.image_processing_carseg import CarSegImageProcessor

from .augment import PAD_LABEL, JointAugmentation, sample_seed
from .option_fields import scaled_resolution

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .arguments import TrainingArguments

INDEX_COLUMN = "sample_index"


class SegmentationTransform:
    """`datasets.Dataset.set_transform` callable: decode, resize, augment; returns uint8 tensors.

    Args:
        processor: The single source of decoding and resizing.
        size: `{"height": H, "width": W}` of the training resolution; with a processor that keeps the aspect
            ratio (`keep_aspect_ratio`), a pixel budget, as at inference.
        augmentation: Joint augmentation, or None (validation).
        seed: Base seed of the per-sample augmentation.
        epoch: A shared one-element int64 tensor holding the current epoch (read by data-loader workers).
        scale_range: `(low, high)`: resize each image to `size` times a factor drawn uniformly from this range,
            reproducibly per (seed, epoch, sample) and independently of the augmentation's draws; None (and
            always without `augmentation`) keeps `size`.
    """

    def __init__(
        self,
        processor: CarSegImageProcessor,
        size: dict[str, int],
        augmentation: JointAugmentation | None = None,
        seed: int = 0,
        epoch: torch.Tensor | None = None,
        scale_range: tuple[float, float] | None = None,
    ) -> None:
        self.processor = processor
        self.size = size
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = epoch
        self.scale_range = scale_range if augmentation is not None else None

    def sample_size(self, height: int, width: int, sample_seed_value: int | None) -> dict[str, int]:
        """The size one `height` x `width` image is resized to.

        The processor's own rule (`resized_size`: `size`, or about as many pixels with the image's aspect ratio
        when the processor keeps it, as at inference), times a factor from `scale_range` when there is one.
        """
        base = self.processor.resized_size(height, width, self.size)
        if self.scale_range is None:
            return base
        # A string seed gives a stream of its own, so the factor is not correlated with the augmentation's draws.
        rng = random.Random(f"resize:{sample_seed_value}") if sample_seed_value is not None else random
        factor = rng.uniform(*self.scale_range)
        scaled_height, scaled_width = scaled_resolution((base["height"], base["width"]), factor)
        return {"height": scaled_height, "width": scaled_width}

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        pixel_values, labels = [], []
        indices = batch.get(INDEX_COLUMN, [None] * len(batch["image"]))
        for image_value, mask_value, index in zip(batch["image"], batch["mask"], indices):
            # entry_source turns an undecoded {"path", "bytes"} cell into a path (or an opened image), so that the
            # processor's loaders decode it and name the file in their errors.
            image_source, mask_source = entry_source(image_value), entry_source(mask_value)
            image = self.processor.load_image(image_source)  # (height, width, 3) uint8
            mask = self.processor.load_mask(mask_source)  # (height, width) uint8 0/1
            check_mask_size(mask.shape[::-1], image.shape[1::-1], mask_source, image_source)
            seed = None
            if self.augmentation is not None and index is not None:
                epoch = int(self.epoch[0]) if self.epoch is not None else 0
                seed = sample_seed(self.seed, epoch, int(index))
            size = self.sample_size(image.shape[0], image.shape[1], seed)
            # np.array copies PIL's read-only buffers once; the permute is a view.
            image = torch.from_numpy(np.array(self.processor.resize_image(image, size))).permute(2, 0, 1)
            mask = torch.from_numpy(np.array(self.processor.resize_mask(mask, size)))  # (height, width)
            if self.augmentation is not None:
                image, mask = self.augmentation(image, mask, seed=seed)
            pixel_values.append(image)
            labels.append(mask)
        return {"pixel_values": pixel_values, "labels": labels}


def prepare_split(dataset: datasets.Dataset, transform: SegmentationTransform) -> datasets.Dataset:
    """Add the sample index, keep file paths undecoded, and attach `transform`.

    Args:
        dataset: A split with `image` and `mask` columns.
        transform: The transform to run on access.

    Returns:
        The dataset, formatted with `transform`.

    Raises:
        ValueError: If the split lacks an `image` or `mask` column.
    """
    missing = [name for name in ("image", "mask") if name not in dataset.column_names]
    if missing:
        raise ValueError(
            f"the dataset lacks the column(s) {missing}; expected `image` and `mask` columns "
            f"(got {dataset.column_names})"
        )
    dataset = dataset.select_columns(["image", "mask"])
    dataset = dataset.cast_column("image", datasets.Image(decode=False))
    dataset = dataset.cast_column("mask", datasets.Image(decode=False))
    dataset = dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))
    dataset.set_transform(transform)
    return dataset


def pad_collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch, padding frames of different sizes to the largest at the bottom and right.

    Frames differ in size when the processor keeps each image's aspect ratio and there is no random crop (always
    in validation). Padding pixels are black and labelled `PAD_LABEL`, which the loss and the validation dice skip;
    frames of one size are stacked as they are.

    Args:
        samples: Dicts with `pixel_values` `(3, h, w)` uint8 and `labels` `(h, w)` uint8 tensors.

    Returns:
        `pixel_values` `(batch, 3, H, W)` and `labels` `(batch, H, W)`, H and W the largest in the batch.
    """
    shapes = {tuple(sample["labels"].shape) for sample in samples}
    if len(shapes) == 1:
        return default_collate(samples)  # in a worker, straight into shared memory
    height, width = (max(sides) for sides in zip(*shapes))
    pixel_values = torch.zeros((len(samples), 3, height, width), dtype=samples[0]["pixel_values"].dtype)
    labels = torch.full((len(samples), height, width), PAD_LABEL, dtype=samples[0]["labels"].dtype)
    for index, sample in enumerate(samples):
        frame_height, frame_width = sample["labels"].shape
        pixel_values[index, :, :frame_height, :frame_width] = sample["pixel_values"]
        labels[index, :frame_height, :frame_width] = sample["labels"]
    return {"pixel_values": pixel_values, "labels": labels}  # (batch, 3, H, W), (batch, H, W)


def build_dataloader(
    dataset: datasets.Dataset, batch_size: int, shuffle: bool, num_workers: int, pin_memory: bool
) -> DataLoader:
    """A DataLoader over a prepared split (`pad_collate` batches); workers stay alive across epochs when any."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=pad_collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
        drop_last=False,
    )


def to_model_inputs(
    pixel_values: torch.Tensor, processor: CarSegImageProcessor, channels_last: bool = False
) -> torch.Tensor:
    """Rescale and normalise a uint8 batch on its device with the processor's parameters.

    Args:
        pixel_values: uint8 tensor of shape `(batch, 3, height, width)`.
        processor: The model's processor.
        channels_last: Return the batch in channels-last memory format.

    Returns:
        A float32 tensor of shape `(batch, 3, height, width)`.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    tensor_processor = CarSegImageProcessor.from_processor(processor)
    return tensor_processor.preprocess_tensors(list(pixel_values), None, memory_format)  # (batch, 3, h, w)


@dataclass
class DataLoaders:
    """The loaders of a training run, the size of each split, and the epoch that augmenting workers read.

    Args:
        train: The training loader (shuffled, augmented).
        validation: The validation loader (whole frames, no augmentation).
        train_images: Images in the training split.
        validation_images: Images in the validation split.
        epoch_counter: A one-element int64 tensor in shared memory holding the current epoch.
    """

    train: DataLoader
    validation: DataLoader
    train_images: int
    validation_images: int
    epoch_counter: torch.Tensor


def load_splits(args: TrainingArguments, accelerator: Accelerator) -> datasets.DatasetDict:
    """The training and validation splits of `--data_dir` or `--dataset_name`, split by car id.

    Raises:
        ValueError: If either split is empty.
    """
    with accelerator.main_process_first():
        splits = load_segmentation_dataset(
            data_dir=args.data_dir,
            dataset_name=args.dataset_name,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
        )
    if len(splits["train"]) == 0 or len(splits["validation"]) == 0:
        raise ValueError(
            f"need images in both splits, got {len(splits['train'])} training and {len(splits['validation'])} "
            "validation images; add cars or change --validation-fraction"
        )
    return splits


def build_dataloaders(
    args: TrainingArguments, splits: datasets.DatasetDict, processor: CarSegImageProcessor
) -> DataLoaders:
    """Loaders that decode and resize with `processor` in workers, and augment the training split jointly."""
    size = {"height": args.resolution[0], "width": args.resolution[1]}
    epoch_counter = torch.zeros(1, dtype=torch.int64).share_memory_()  # read by workers for augmentation seeds
    augmentation = JointAugmentation(args.augmentation())
    train_dataset = prepare_split(
        splits["train"],
        SegmentationTransform(processor, size, augmentation, args.seed, epoch_counter, args.resolution_scale_range),
    )
    eval_dataset = prepare_split(splits["validation"], SegmentationTransform(processor, size))
    pin_memory = torch.cuda.is_available()
    train = build_dataloader(train_dataset, args.train_batch_size, True, args.dataloader_num_workers, pin_memory)
    validation = build_dataloader(eval_dataset, args.eval_batch_size, False, args.dataloader_num_workers, pin_memory)
    return DataLoaders(train, validation, len(train_dataset), len(eval_dataset), epoch_counter)
