"""Registration of the carseg classes with transformers' Auto classes and remote-code saving."""

from __future__ import annotations

import inspect

from transformers import AutoConfig, AutoImageProcessor, AutoModelForSemanticSegmentation, AutoVideoProcessor

from .configuration_carseg import CarSegConfig
from .image_processing_carseg import CarSegImageProcessor
from .image_processing_pil_carseg import CarSegImageProcessorPil
from .modeling_carseg import CarSegForSemanticSegmentation


def register_auto_classes() -> None:
    """Register carseg with the Auto classes (idempotent) and mark its classes for remote-code saving.

    `AutoImageProcessor` gets both backends: `CarSegImageProcessor` (torch, the default) and
    `CarSegImageProcessorPil` (`backend="pil"`). The image-segmentation pipeline's model check is answered by
    `CarSegImageSegmentationPipeline.check_model_type`, so no name is written into transformers' own mappings.
    """
    AutoConfig.register(CarSegConfig.model_type, CarSegConfig, exist_ok=True)
    AutoModelForSemanticSegmentation.register(CarSegConfig, CarSegForSemanticSegmentation, exist_ok=True)
    AutoImageProcessor.register(
        CarSegConfig,
        image_processor_classes={"torchvision": CarSegImageProcessor, "pil": CarSegImageProcessorPil},
        exist_ok=True,
    )
    # The image-segmentation pipeline also probes for a video processor; an empty entry answers "none" without
    # falling back to the folder's remote code (which would prompt on stdin). Earlier 5.x releases (5.17 is tested)
    # register one class per config (`None` here) instead of a dictionary of backends (5.25).
    if "video_processor_classes" in inspect.signature(AutoVideoProcessor.register).parameters:
        AutoVideoProcessor.register(CarSegConfig, video_processor_classes={}, exist_ok=True)
    else:
        AutoVideoProcessor.register(CarSegConfig, None, exist_ok=True)
    _install_pipeline()
    CarSegConfig.register_for_auto_class("AutoConfig")
    CarSegForSemanticSegmentation.register_for_auto_class("AutoModelForSemanticSegmentation")
    CarSegImageProcessor.register_for_auto_class("AutoImageProcessor")
    CarSegImageProcessorPil.register_for_auto_class("AutoImageProcessor")


def _install_pipeline() -> None:
    """Make `pipeline("image-segmentation")` build `CarSegImageSegmentationPipeline` (the stock one for other models).

    Only the stock entry is replaced, so that another library's own override is left alone.
    """
    from transformers.pipelines import SUPPORTED_TASKS
    from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

    from .pipeline_carseg import CarSegImageSegmentationPipeline

    task = SUPPORTED_TASKS["image-segmentation"]
    stock = (ImageSegmentationPipeline, "transformers.pipelines.image_segmentation.ImageSegmentationPipeline")
    if task["impl"] in stock:
        task["impl"] = CarSegImageSegmentationPipeline
