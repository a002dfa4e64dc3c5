"""carseg: binary car segmentation (Carvana) for the Hugging Face ecosystem.

Importing this package registers the carseg classes with transformers' Auto classes, so that
`AutoConfig`, `AutoModelForSemanticSegmentation`, `AutoImageProcessor` and `pipeline("image-segmentation")`
resolve them without remote code.

The import itself is cheap: the names below are loaded on first use, and the registration runs as soon as
transformers is imported, before or after this package (see `carseg_hf.lazy_registration`), so that the `carseg`
command line answers `--help` without loading transformers or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports
from .lazy_registration import register_when_transformers_is_imported

__version__ = "0.1.0"

#: Public names and the submodule that defines each; imported on first access (PEP 562).
_EXPORTS = {
    "CarSegConfig": "configuration_carseg",
    "CarSegForSemanticSegmentation": "modeling_carseg",
    "CarSegImageProcessor": "image_processing_carseg",
    "CarSegImageProcessorPil": "image_processing_pil_carseg",
    "CarSegPreTrainedModel": "modeling_carseg",
    "ImageDecodeError": "image_io",
    "bce_dice_loss": "modeling_carseg",
    "load_mask": "image_io",
    "load_rgb": "image_io",
    "register_auto_classes": "registration",
}

__all__ = [  # the keys of _EXPORTS, written out so that tools see them
    "CarSegConfig",
    "CarSegForSemanticSegmentation",
    "CarSegImageProcessor",
    "CarSegImageProcessorPil",
    "CarSegPreTrainedModel",
    "ImageDecodeError",
    "bce_dice_loss",
    "load_mask",
    "load_rgb",
    "register_auto_classes",
]

if TYPE_CHECKING:
    from .configuration_carseg import CarSegConfig
    from .image_io import ImageDecodeError, load_mask, load_rgb
    from .image_processing_carseg import CarSegImageProcessor
    from .image_processing_pil_carseg import CarSegImageProcessorPil
    from .modeling_carseg import CarSegForSemanticSegmentation, CarSegPreTrainedModel, bce_dice_loss
    from .registration import register_auto_classes

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


register_when_transformers_is_imported()
