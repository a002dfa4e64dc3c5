"""transformers' image-segmentation pipeline, with a carseg model's inputs and threshold handled by its processor.

The stock `ImageSegmentationPipeline` decodes every input with `transformers.image_utils.load_image`, which converts
it to RGB before the image processor sees it: a 16-bit greyscale PNG saturates to white, any pixel count is decoded,
and errors cannot name the file. It also calls `post_process_semantic_segmentation` without the `threshold=` it was
given. `register_auto_classes` installs `CarSegImageSegmentationPipeline` as the task's pipeline: for a model whose
image processor is a carseg one (`CarSegImageProcessor`, torch, or `CarSegImageProcessorPil`), it hands the input
(path, PIL image, array) to the processor as is, so that `carseg_hf.image_io` decodes it like everywhere else in
carseg, and passes `threshold=` to post-processing after the processor has checked it. For every other model it is
the stock pipeline, unchanged.

The stock pipeline also checks the model's class name against transformers' built-in segmentation mappings only
(`Pipeline.check_model_type` gets plain dictionaries of names, blind to `AutoModelForSemanticSegmentation.register`)
and would log a false "not supported" error for a carseg model; `check_model_type` here accepts registered classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING
from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

from .image_processing_base_carseg import CarSegImageProcessorBase

#: Inputs that the stock pipeline fetches itself (it downloads URLs and decodes base64 strings).
_FETCHED_PREFIXES = ("http://", "https://", "data:image/")


class CarSegImageSegmentationPipeline(ImageSegmentationPipeline):
    """`ImageSegmentationPipeline`, with a carseg model's decoding and threshold left to its image processor."""

    def _is_carseg(self) -> bool:
        return isinstance(getattr(self, "image_processor", None), CarSegImageProcessorBase)

    def check_model_type(self, supported_models: list[str] | dict) -> None:
        """Accept a model registered with `AutoModelForSemanticSegmentation`; others are checked as in the stock one.

        Args:
            supported_models: The names the stock pipeline checks against (transformers' built-in models only).
        """
        config_class = type(self.model.config)
        if config_class in MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING and isinstance(
            self.model, MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING[config_class]
        ):
            return
        super().check_model_type(supported_models)

    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict, dict, dict]:
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if "threshold" in kwargs and self._is_carseg():
            postprocess["threshold"] = CarSegImageProcessorBase.check_threshold(
                kwargs["threshold"]
            )  # fails at the call
        return preprocess, forward, postprocess

    def get_iterator(
        self,
        inputs: Any,
        num_workers: int,
        batch_size: int,
        preprocess_params: dict,
        forward_params: dict,
        postprocess_params: dict,
    ) -> Any:
        """The stock iterator, one image per forward pass where a carseg processor keeps aspect ratios.

        Images of different aspect ratios then have different input sizes, which the stock collate function cannot
        stack; one at a time, every mask is the same whatever `batch_size` is.
        """
        if self._is_carseg() and self.image_processor.do_resize and self.image_processor.keep_aspect_ratio:
            batch_size = 1
        return super().get_iterator(
            inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
        )

    def preprocess(self, image: Any, subtask: str | None = None, timeout: float | None = None) -> Any:
        """Let the carseg processor decode the input as given (paths, PIL images, arrays); others as the stock one."""
        if not self._is_carseg() or (isinstance(image, str) and image.startswith(_FETCHED_PREFIXES)):
            return super().preprocess(image, subtask=subtask, timeout=timeout)
        array = self.image_processor.load_image(image)  # (height, width, 3) uint8; names the file on errors
        inputs = self.image_processor(images=[array], return_tensors="pt").to(self.dtype)
        inputs["target_size"] = [array.shape[:2]]
        return inputs

    def postprocess(
        self,
        model_outputs: Any,
        subtask: str | None = None,
        threshold: float | None = None,
        mask_threshold: float = 0.5,
        overlap_mask_area_threshold: float = 0.5,
    ) -> list[dict[str, Any]]:
        """One `{"score", "label", "mask"}` per class present; a carseg mask is thresholded at `threshold`."""
        if not self._is_carseg():
            return super().postprocess(
                model_outputs,
                subtask,
                0.9 if threshold is None else threshold,
                mask_threshold,
                overlap_mask_area_threshold,
            )
        segmentation = self.image_processor.post_process_semantic_segmentation(
            model_outputs, target_sizes=model_outputs["target_size"], threshold=threshold
        )[0].numpy()  # (height, width) label ids
        return [
            {
                "score": None,
                "label": self.model.config.id2label[int(label)],
                "mask": Image.fromarray(((segmentation == label) * 255).astype(np.uint8)),  # mode "L"
            }
            for label in np.unique(segmentation)
        ]
