"""carseg: binary car segmentation (Carvana) for the Hugging Face ecosystem.

Importing this package registers the carseg classes with transformers' Auto classes, so that
`AutoConfig`, `AutoModelForSemanticSegmentation`, `AutoImageProcessor` and `pipeline("image-segmentation")`
resolve them without remote code.
"""

from __future__ import annotations

from .configuration_carseg import CarSegConfig
from .image_io import ImageDecodeError, load_mask, load_rgb
from .image_processing_carseg import CarSegImageProcessor
from .modeling_carseg import CarSegForSemanticSegmentation, CarSegPreTrainedModel, bce_dice_loss
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "CarSegConfig",
    "CarSegForSemanticSegmentation",
    "CarSegImageProcessor",
    "CarSegPreTrainedModel",
    "ImageDecodeError",
    "bce_dice_loss",
    "load_mask",
    "load_rgb",
    "register_auto_classes",
]
