"""The network a training run starts from: a model to fine-tune, a U-Net on a pretrained encoder, or a fresh one."""

from __future__ import annotations

import torch

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, CarSegImageProcessor
from carseg_hf.loading import load_model

from .arguments import TrainingArguments
from .augment import PAD_LABEL

#: Decoder widths (deepest last) of a fresh `--encoder` U-Net unless `--encoder_channels` says otherwise.
ENCODER_UNET_CHANNELS = (8, 16, 32, 64, 128)


#: `--encoder-channels` with `--encoder-name` when none are given: the 5 decoder levels of an smp encoder.
SMP_DECODER_CHANNELS = (16, 32, 64, 128, 256)


def build_model(args: TrainingArguments) -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor]:
    """Load `--model_name_or_path` or build a fresh network from the config options.

    Args:
        args: The training arguments.

    Returns:
        `(model, processor)`, the model in training mode with the memory options applied, the processor resizing to
        `--resolution`.
    """
    size = {"height": args.resolution[0], "width": args.resolution[1]}
    if args.model_name_or_path is not None:
        model, processor = load_model(args.model_name_or_path, device="cpu", revision=args.revision)
        processor.do_resize = True
        processor.size = size
    elif args.encoder is not None:
        model, processor = build_pretrained_encoder_model(args, size)
    else:
        channels = args.encoder_channels
        if args.encoder_name is not None and channels is None:
            channels = SMP_DECODER_CHANNELS  # the reference U-Net's 7 levels are deeper than any smp encoder
        overrides = {
            "encoder_channels": channels,
            "center_channels": args.center_channels,
            "decoder_convs": args.decoder_convs,
            "norm": args.norm,
            "encoder_name": args.encoder_name,
        }
        config = CarSegConfig(**{key: value for key, value in overrides.items() if value is not None})
        try:
            model = CarSegForSemanticSegmentation(config)
        except KeyError as error:  # smp's "Wrong encoder name" with its whole list
            raise ValueError(
                f"--encoder-name {args.encoder_name!r} is not a segmentation-models-pytorch encoder; e.g. resnet34, "
                "efficientnet-b0, mobilenet_v2, or tu-<a timm model name>"
            ) from error
        processor = CarSegImageProcessor(size=size)
    check_ignore_index(model, args.model_name_or_path)
    apply_loss_options(model, args)
    if args.gradient_checkpointing:
        model.enable_activation_checkpointing()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(), processor


def check_ignore_index(model: CarSegForSemanticSegmentation, source: str | None) -> None:
    """Refuse a config whose loss would count the padding label (`PAD_LABEL`) instead of skipping it.

    Raises:
        ValueError: Naming the model, its `semantic_loss_ignore_index` and the value training needs.
    """
    ignore_index = model.config.semantic_loss_ignore_index
    if ignore_index != PAD_LABEL:
        raise ValueError(
            f"{source or 'the model'}: config.semantic_loss_ignore_index is {ignore_index!r}, but training labels "
            f"padding pixels {PAD_LABEL} and needs the loss to skip them; set semantic_loss_ignore_index to "
            f"{PAD_LABEL} in its config.json"
        )


def apply_loss_options(model: CarSegForSemanticSegmentation, args: TrainingArguments) -> None:
    """Write `--boundary-loss-weight` and `--boundary-loss-width`, where given, into the model's config."""
    for name in ("boundary_loss_weight", "boundary_loss_width"):
        if getattr(args, name) is not None:
            setattr(model.config, name, getattr(args, name))


def build_pretrained_encoder_model(
    args: TrainingArguments, size: dict[str, int]
) -> tuple[CarSegForSemanticSegmentation, CarSegImageProcessor]:
    """A fresh U-Net on `--encoder`, with its ImageNet weights unless `--encoder-weights none`, and its processor."""
    from .pretrained_encoder import IMAGENET, get_encoder, load_imagenet_encoder

    encoder = get_encoder(args.encoder)
    channels = args.encoder_channels or ENCODER_UNET_CHANNELS
    config = CarSegConfig(
        encoder_name=encoder.smp_encoder_name, encoder_channels=channels, norm=args.norm or "batchnorm"
    )
    model = CarSegForSemanticSegmentation(config)
    if args.encoder_weights == IMAGENET:
        load_imagenet_encoder(model, args.encoder)
    return model, CarSegImageProcessor(size=size, image_mean=encoder.image_mean, image_std=encoder.image_std)
