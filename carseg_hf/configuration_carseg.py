"""Configuration of the carseg U-Net for binary car segmentation."""

from __future__ import annotations

import math
from collections.abc import Sequence

from transformers import PretrainedConfig

#: Named widths used by the benchmarks and docs: the reference network, the slimmer width of the bundled default
#: model (2.4M parameters, for CPU demos), and the tiny test network.
NAMED_CONFIGS: dict[str, dict] = {
    "reference": {},
    "slim": {"encoder_channels": (8, 16, 32, 48, 64, 96, 128), "center_channels": 192},
    "tiny": {"encoder_channels": (4, 8, 16), "center_channels": 16, "decoder_convs": 2},
}

_NORMS = ("batchnorm", "none")
_UPSAMPLING = ("nearest", "bilinear")
#: Fields that set the training loss only: two configs that differ in them describe the same network and weights.
LOSS_FIELDS = ("semantic_loss_ignore_index", "dice_smooth", "boundary_loss_weight", "boundary_loss_width")


class CarSegConfig(PretrainedConfig):
    r"""Configuration for [`CarSegForSemanticSegmentation`].

    The defaults describe the reference network of the Carvana recipe: a 7-level U-Net with 8 to 512 channels,
    a 1024-channel center, 3 convolutions per decoder level, nearest 2x upsampling and a 1x1 head. It has about
    34.6M parameters and costs 56.6 GFLOP per 1024x1024 image.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Number of input image channels.
        encoder_channels (`Sequence[int]`, *optional*, defaults to `(8, 16, 32, 64, 128, 256, 512)`):
            Output channels of each encoder level. Each level is two (3x3 conv, norm, ReLU) blocks followed by a
            2x2 max-pool, so the network downsamples by `2 ** len(encoder_channels)` in total.
        center_channels (`int`, *optional*, defaults to 1024):
            Channels of the two (conv, norm, ReLU) blocks at the bottleneck.
        encoder_convs (`int`, *optional*, defaults to 2):
            Number of (conv, norm, ReLU) blocks per encoder level.
        center_convs (`int`, *optional*, defaults to 2):
            Number of (conv, norm, ReLU) blocks in the center.
        decoder_convs (`int`, *optional*, defaults to 3):
            Number of (conv, norm, ReLU) blocks per decoder level, after the skip concatenation.
        norm (`str`, *optional*, defaults to `"batchnorm"`):
            Normalisation after each convolution: `"batchnorm"` or `"none"`.
        upsampling (`str`, *optional*, defaults to `"nearest"`):
            Mode of the 2x upsampling in the decoder: `"nearest"` or `"bilinear"`.
        encoder_name (`str`, *optional*):
            Name of a segmentation-models-pytorch encoder (e.g. `"resnet34"`). When set, the model wraps
            `smp.Unet(encoder_name, encoder_weights=None)` instead of the reference U-Net; its weights always come
            from our checkpoints, never from a download. `encoder_channels` then only sets the depth of the smp
            encoder and the widths of its decoder.
        id2label (`dict[int, str]`, *optional*, defaults to `{0: "background", 1: "car"}`):
            The two classes. The head emits one logit per pixel; label 1 is predicted where its sigmoid exceeds
            the threshold of the image processor's post-processing.
        semantic_loss_ignore_index (`int`, *optional*, defaults to 255):
            Label value ignored by the loss, kept for compatibility with transformers' segmentation heads.
        dice_smooth (`float`, *optional*, defaults to 1.0):
            Additive smoothing of the soft dice term in `bce_dice_loss`.
        boundary_loss_weight (`float`, *optional*, defaults to 0.0):
            Extra weight of the BCE term on pixels within `boundary_loss_width` pixels of a mask edge: they count
            `1 + boundary_loss_weight` times. 0 is the reference recipe's plain BCE.
        boundary_loss_width (`int`, *optional*, defaults to 3):
            Half-width in pixels (at the training resolution) of the band that `boundary_loss_weight` weighs.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Kept for transformers compatibility; convolutions use Kaiming normal initialisation.
    """

    model_type = "carseg"

    def __init__(
        self,
        num_channels: int = 3,
        encoder_channels: Sequence[int] = (8, 16, 32, 64, 128, 256, 512),
        center_channels: int = 1024,
        encoder_convs: int = 2,
        center_convs: int = 2,
        decoder_convs: int = 3,
        norm: str = "batchnorm",
        upsampling: str = "nearest",
        encoder_name: str | None = None,
        semantic_loss_ignore_index: int = 255,
        dice_smooth: float = 1.0,
        boundary_loss_weight: float = 0.0,
        boundary_loss_width: int = 3,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        kwargs.setdefault("id2label", {0: "background", 1: "car"})
        kwargs.setdefault("label2id", {label: int(idx) for idx, label in kwargs["id2label"].items()})
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.encoder_channels = [int(c) for c in encoder_channels]
        self.center_channels = center_channels
        self.encoder_convs = encoder_convs
        self.center_convs = center_convs
        self.decoder_convs = decoder_convs
        self.norm = norm
        self.upsampling = upsampling
        self.encoder_name = encoder_name
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.dice_smooth = dice_smooth
        self.boundary_loss_weight = boundary_loss_weight
        self.boundary_loss_width = boundary_loss_width
        self.initializer_range = initializer_range
        self._validate()

    def loss_description(self) -> str:
        """The training loss these fields define, in words (for model cards and run records)."""
        bce = "binary cross-entropy on the logit"
        if self.boundary_loss_weight > 0:
            bce += (
                f", {1 + self.boundary_loss_weight:g} times the weight within {self.boundary_loss_width} px of a"
                " mask edge,"
            )
        return f"{bce} plus (1 - soft dice) on the sigmoid"

    @property
    def depth(self) -> int:
        """Number of encoder levels (and of 2x downsamplings)."""
        return len(self.encoder_channels)

    @property
    def size_divisor(self) -> int:
        """Input height and width are padded internally to a multiple of this value."""
        return 2**self.depth

    def _validate(self) -> None:
        if not isinstance(self.num_channels, int) or self.num_channels < 1:
            raise ValueError(f"num_channels must be a positive integer, got {self.num_channels!r}")
        if len(self.encoder_channels) < 1:
            raise ValueError("encoder_channels must name at least one encoder level, got an empty sequence")
        if any(c < 1 for c in self.encoder_channels):
            raise ValueError(f"encoder_channels must all be positive, got {self.encoder_channels}")
        if len(self.encoder_channels) > 10:
            raise ValueError(f"encoder_channels allows at most 10 levels (2**10 padding), got {self.encoder_channels}")
        if not isinstance(self.center_channels, int) or self.center_channels < 1:
            raise ValueError(f"center_channels must be a positive integer, got {self.center_channels!r}")
        for name in ("encoder_convs", "center_convs", "decoder_convs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {self.norm!r}")
        if self.upsampling not in _UPSAMPLING:
            raise ValueError(f"upsampling must be one of {_UPSAMPLING}, got {self.upsampling!r}")
        if len(self.id2label) != 2:
            raise ValueError(
                f"carseg is a binary model with one logit; id2label must have 2 entries "
                f"(background, car), got {self.id2label}"
            )
        if not 0 <= self.dice_smooth < math.inf:
            raise ValueError(f"dice_smooth must be a finite number >= 0, got {self.dice_smooth}")
        if not 0 <= self.boundary_loss_weight < math.inf:
            raise ValueError(f"boundary_loss_weight must be a finite number >= 0, got {self.boundary_loss_weight}")
        if not isinstance(self.boundary_loss_width, int) or self.boundary_loss_width < 1:
            raise ValueError(f"boundary_loss_width must be an integer >= 1, got {self.boundary_loss_width!r}")
        if self.encoder_name is not None and not isinstance(self.encoder_name, str):
            raise ValueError(f"encoder_name must be a string such as 'resnet34' or None, got {self.encoder_name!r}")
        if self.encoder_name is not None and not 1 <= self.depth <= 5:
            raise ValueError(f"smp encoders support a depth of 1 to 5; encoder_channels has {self.depth} levels")
