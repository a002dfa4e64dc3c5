"""The carseg U-Net as a transformers model for binary car segmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_carseg import CarSegConfig


def soft_dice(probs: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft dice over the whole batch, as in the reference Keras recipe.

    Args:
        probs: Probabilities in [0, 1], any shape.
        targets: Binary targets of the same shape as `probs`.
        smooth: Additive smoothing of numerator and denominator.

    Returns:
        A scalar tensor in [0, 1].
    """
    intersection = (probs * targets).sum()
    return (2.0 * intersection + smooth) / (probs.sum() + targets.sum() + smooth)


def boundary_band(targets: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within `width` pixels (a square neighbourhood) of a change between car and background.

    Args:
        targets: Binary targets of shape `(batch, height, width)`.
        width: Half-width of the band in pixels, at least 1.

    Returns:
        A boolean tensor of the same shape, true on both sides of every mask edge.
    """
    masks = targets.float()[:, None]  # (batch, 1, height, width)
    return (_square_max(masks, width) != -_square_max(-masks, width))[:, 0]  # (batch, height, width)


def _square_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over the `(2 * radius + 1)` square around each pixel, as a row pass then a column pass."""
    rows = F.max_pool2d(x, (1, 2 * radius + 1), stride=1, padding=(0, radius))  # (batch, 1, height, width)
    return F.max_pool2d(rows, (2 * radius + 1, 1), stride=1, padding=(radius, 0))  # (batch, 1, height, width)


def bce_dice_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int | None = 255,
    smooth: float = 1.0,
    boundary_weight: float = 0.0,
    boundary_width: int = 3,
) -> torch.Tensor:
    """BCE-with-logits plus (1 - soft dice), computed over the whole batch.

    Args:
        logits: Raw scores of shape `(batch, 1, height, width)` or `(batch, height, width)`.
        labels: Binary labels (0/1) of shape `(batch, height, width)` or `(batch, 1, height, width)`. Pixels equal to
            `ignore_index` do not contribute.
        ignore_index: Label value to ignore, or `None`.
        smooth: Smoothing of the dice term.
        boundary_weight: Extra BCE weight of the pixels near a mask edge (`boundary_band`): they count
            `1 + boundary_weight` times. 0 keeps the plain BCE.
        boundary_width: Half-width in pixels of that band.

    Returns:
        The scalar loss.

    Raises:
        ValueError: If the shapes of logits and labels do not match, or labels hold values other than 0, 1 and the
            ignore index (for example 0/255 masks that were not normalised).
    """
    if logits.dim() == 4:
        logits = logits[:, 0]  # (batch, height, width)
    if labels.dim() == 4:
        labels = labels[:, 0]  # (batch, height, width)
    if logits.shape != labels.shape:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} and labels of shape {tuple(labels.shape)} differ; "
            "labels must be (batch, height, width) at the input resolution"
        )
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    targets = torch.where(valid, labels, torch.zeros_like(labels)).float()
    if bool(((targets != 0) & (targets != 1)).any()):
        raise ValueError(
            "labels must be binary (0 = background, 1 = car); got values "
            f"{torch.unique(targets).tolist()[:8]}. Normalise 0/255 masks with CarSegImageProcessor."
        )
    logits = logits.float()
    weights = valid.float()
    bce_weights = weights
    if boundary_weight > 0:
        bce_weights = weights * (1.0 + boundary_weight * boundary_band(targets, boundary_width).float())
    bce = F.binary_cross_entropy_with_logits(logits, targets, weight=bce_weights, reduction="sum")
    bce = bce / bce_weights.sum().clamp_min(1.0)
    probs = torch.sigmoid(logits) * weights
    return bce + (1.0 - soft_dice(probs, targets * weights, smooth))


class CarSegConvBlock(nn.Sequential):
    """A 3x3 convolution, optional BatchNorm and ReLU; spatial size is kept."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        use_norm = norm == "batchnorm"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not use_norm),
            nn.BatchNorm2d(out_channels) if use_norm else nn.Identity(),
            nn.ReLU(inplace=True),
        )


class CarSegStage(nn.Module):
    """A stack of `CarSegConvBlock`s that supports gradient checkpointing."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int, norm: str) -> None:
        super().__init__()
        blocks = [CarSegConvBlock(in_channels, out_channels, norm)]
        blocks += [CarSegConvBlock(out_channels, out_channels, norm) for _ in range(num_convs - 1)]
        self.blocks = nn.Sequential(*blocks)
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and hidden_states.requires_grad:
            return torch.utils.checkpoint.checkpoint(self.blocks, hidden_states, use_reentrant=False)
        return self.blocks(hidden_states)


class CarSegUNet(nn.Module):
    """The reference U-Net: encoder levels with max-pool, a center, and decoder levels with skip concatenation."""

    def __init__(self, config: CarSegConfig) -> None:
        super().__init__()
        self.upsampling = config.upsampling
        self.encoder = nn.ModuleList()
        in_channels = config.num_channels
        for channels in config.encoder_channels:
            self.encoder.append(CarSegStage(in_channels, channels, config.encoder_convs, config.norm))
            in_channels = channels
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.center = CarSegStage(in_channels, config.center_channels, config.center_convs, config.norm)
        self.decoder = nn.ModuleList()
        in_channels = config.center_channels
        for channels in reversed(config.encoder_channels):
            self.decoder.append(CarSegStage(in_channels + channels, channels, config.decoder_convs, config.norm))
            in_channels = channels
        self.head = nn.Conv2d(in_channels, 1, kernel_size=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden_states = pixel_values  # (batch, channels, height, width), height and width divisible by 2**depth
        skips = []
        for stage in self.encoder:
            hidden_states = stage(hidden_states)  # (batch, level_channels, h, w)
            skips.append(hidden_states)
            hidden_states = self.pool(hidden_states)  # (batch, level_channels, h / 2, w / 2)
        hidden_states = self.center(hidden_states)  # (batch, center_channels, height / 2**depth, width / 2**depth)
        for stage, skip in zip(self.decoder, reversed(skips)):
            if self.upsampling == "nearest":
                hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
            else:
                hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="bilinear", align_corners=False)
            hidden_states = torch.cat([hidden_states, skip], dim=1)  # (batch, previous + level_channels, h, w)
            hidden_states = stage(hidden_states)  # (batch, level_channels, h, w)
        return self.head(hidden_states)  # (batch, 1, height, width)


class CarSegSmpUNet(nn.Module):
    """A segmentation-models-pytorch U-Net with a named encoder, always built without downloaded weights."""

    def __init__(self, config: CarSegConfig) -> None:
        super().__init__()
        try:
            import segmentation_models_pytorch as smp
        except ImportError as error:  # pragma: no cover - smp is a core dependency
            raise ImportError(
                f"encoder_name={config.encoder_name!r} needs segmentation-models-pytorch: "
                "pip install segmentation-models-pytorch"
            ) from error
        self.net = smp.Unet(
            encoder_name=config.encoder_name,
            encoder_weights=None,
            encoder_depth=config.depth,
            decoder_channels=tuple(reversed(config.encoder_channels)),
            in_channels=config.num_channels,
            classes=1,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values)  # (batch, 1, height, width)


class CarSegPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the transformers plumbing shared by carseg models."""

    config_class = CarSegConfig
    base_model_prefix = "carseg"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()

    def enable_activation_checkpointing(self) -> None:
        """Recompute activations in the backward pass instead of storing them (less memory, more compute).

        Recent transformers releases (5.25 is tested) call this `activation_checkpointing_enable` and keep
        `gradient_checkpointing_enable` as a deprecated alias; earlier 5.x releases (5.17 is tested) have only the
        latter. This calls whichever the installed release has.
        """
        enable = getattr(self, "activation_checkpointing_enable", None) or self.gradient_checkpointing_enable
        enable()


class CarSegForSemanticSegmentation(CarSegPreTrainedModel):
    """Binary car segmentation: one logit per pixel, at the input resolution for any height and width.

    The input is padded on the bottom and right (edge replication) to a multiple of `config.size_divisor` and the
    logits are cropped back, so no resizing ever happens inside the model.
    """

    def __init__(self, config: CarSegConfig) -> None:
        super().__init__(config)
        self.unet = CarSegSmpUNet(config) if config.encoder_name else CarSegUNet(config)
        self.post_init()

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"pixel_values must be a torch.Tensor of shape (batch, {self.config.num_channels}, height, width), "
                f"got {type(pixel_values).__name__}; use CarSegImageProcessor to prepare images"
            )
        if pixel_values.dim() != 4 or pixel_values.shape[1] != self.config.num_channels:
            hint = ""
            if pixel_values.dim() == 4 and pixel_values.shape[-1] == self.config.num_channels:
                hint = " It looks channels-last; permute to (batch, channels, height, width)."
            elif pixel_values.dim() == 3:
                hint = " Add a batch dimension with pixel_values[None]."
            raise ValueError(
                f"pixel_values must have shape (batch, {self.config.num_channels}, height, width), "
                f"got {tuple(pixel_values.shape)}.{hint}"
            )
        if not pixel_values.is_floating_point():
            raise ValueError(
                f"pixel_values must be a floating-point tensor, got {pixel_values.dtype}; "
                "rescale and normalise with CarSegImageProcessor"
            )

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SemanticSegmenterOutput | tuple:
        """Segment a batch of images.

        Args:
            pixel_values: Normalised images of shape `(batch, num_channels, height, width)`, any height and width.
            labels: Optional binary masks of shape `(batch, height, width)` with values 0/1 (and the ignore index).
            return_dict: Return a `SemanticSegmenterOutput` (default) or a tuple.
            **kwargs: Ignored; accepted for compatibility with transformers' pipelines and Trainer.

        Returns:
            A `SemanticSegmenterOutput` whose `logits` have shape `(batch, 1, height, width)`, and whose `loss` is
            `bce_dice_loss` when labels are given.
        """
        self._check_pixel_values(pixel_values)
        height, width = pixel_values.shape[-2], pixel_values.shape[-1]
        divisor = self.config.size_divisor
        # Always pad (possibly by 0) so that tracing never freezes a shape test.
        pad_bottom = (divisor - height % divisor) % divisor
        pad_right = (divisor - width % divisor) % divisor
        padded = F.pad(pixel_values, (0, pad_right, 0, pad_bottom), mode="replicate")
        # (batch, channels, height + pad_bottom, width + pad_right)
        logits = self.unet(padded)  # (batch, 1, padded_height, padded_width)
        logits = logits[:, :, :height, :width]  # (batch, 1, height, width)

        loss = None
        if labels is not None:
            loss = bce_dice_loss(
                logits,
                labels,
                ignore_index=self.config.semantic_loss_ignore_index,
                smooth=self.config.dice_smooth,
                boundary_weight=self.config.boundary_loss_weight,
                boundary_width=self.config.boundary_loss_width,
            )

        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return (loss, logits) if loss is not None else (logits,)
        return SemanticSegmenterOutput(loss=loss, logits=logits)
