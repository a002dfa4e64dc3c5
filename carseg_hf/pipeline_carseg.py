"""transformers' image-segmentation pipeline, with a carseg model's inputs and threshold handled by its processor.

The stock `ImageSegmentationPipeline` decodes every input with `transformers.image_utils.load_image`, which converts
it to RGB before the image processor sees it: a 16-bit greyscale PNG saturates to white, any pixel count is decoded,
and errors cannot name the file. It also calls `post_process_semantic_segmentation` without the `threshold=` it was
given. `register_auto_classes` installs `CarSegImageSegmentationPipeline` as the task's pipeline: for a model whose
image processor is a carseg one (`CarSegImageProcessor`, torch, or `CarSegImageProcessorPil`), it hands the input
(path, PIL image, array) to the processor as is, so that `carseg_hf.image_io` decodes it like everywhere else in
carseg, and passes `threshold=` to post-processing after the processor has checked it. For every other model it is
the stock pipeline, unchanged.

For a carseg model, `zoom=True` adds the second pass of `carseg_hf.zoom` (a close-up's car is segmented once more
at a small input; a car that runs off both sides of a tall frame, once more at a smaller input; a car that fills
little of the frame, once more from a crop around it), as `Segmenter.segment(..., zoom=True)` does.

The stock pipeline also checks the model's class name against transformers' built-in segmentation mappings only
(`Pipeline.check_model_type` gets plain dictionaries of names, blind to `AutoModelForSemanticSegmentation.register`)
and would log a false "not supported" error for a carseg model; `check_model_type` here accepts registered classes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_utils import load_image
from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING
from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

from .image_processing_base_carseg import CarSegImageProcessorBase
from .zoom_pass import run_second_pass

#: Inputs that the stock pipeline fetches itself (it downloads URLs and decodes base64 strings).
_FETCHED_PREFIXES = ("http://", "https://", "data:image/")
#: A bare base64 image (as transformers' `load_image` takes): its alphabet only, and longer than any image header.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_MIN_BASE64_LENGTH = 64


def _is_fetched(image: Any) -> bool:
    """Whether the stock pipeline fetches or decodes `image` itself: a URL, a data URI or a bare base64 string.

    Any other string (an existing file, or one with a character outside base64's alphabet, such as the dot of a
    file extension) is a path: carseg decodes it, and names it in its errors.
    """
    if not isinstance(image, str):
        return False
    if image.startswith(_FETCHED_PREFIXES):
        return True
    text = "".join(image.split())
    return len(text) >= _MIN_BASE64_LENGTH and _BASE64.fullmatch(text) is not None and not os.path.exists(image)


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
        if not self._is_carseg():
            if kwargs.get("zoom"):
                raise ValueError(f"zoom=True needs a carseg model; this pipeline runs {type(self.model).__name__}")
            return preprocess, forward, postprocess
        if "threshold" in kwargs:  # checked here, so that a bad threshold fails at the call
            postprocess["threshold"] = CarSegImageProcessorBase.check_threshold(kwargs["threshold"])
        if kwargs.get("zoom"):
            preprocess["zoom"] = True
            forward["zoom_threshold"] = postprocess.get("threshold", self.image_processor.threshold)
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
        keeps_aspect = self._is_carseg() and self.image_processor.do_resize and self.image_processor.keep_aspect_ratio
        if keeps_aspect or preprocess_params.get("zoom"):
            batch_size = 1
        return super().get_iterator(
            inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
        )

    def preprocess(
        self, image: Any, subtask: str | None = None, timeout: float | None = None, zoom: bool = False
    ) -> Any:
        """Let the carseg processor decode the input as given (paths, PIL images, arrays); others as the stock one."""
        fetched = _is_fetched(image)
        if not self._is_carseg() or (fetched and not zoom):
            return super().preprocess(image, subtask=subtask, timeout=timeout)
        if fetched:  # a URL or a base64 image: transformers fetches and decodes it, zoom needs it as an array
            image = load_image(image, timeout=timeout)
        array = self.image_processor.load_image(image)  # (height, width, 3) uint8; names the file on errors
        inputs = self.image_processor(images=[array], return_tensors="pt").to(self.dtype)
        inputs["target_size"] = [array.shape[:2]]
        if zoom:
            inputs["zoom_image"] = array
        return inputs

    def _forward(self, model_inputs: dict, zoom_threshold: float | None = None) -> Any:
        """The stock forward pass, then for `zoom=True` zoom's second pass (`carseg_hf.zoom`)."""
        image = model_inputs.pop("zoom_image", None)
        input_size = tuple(model_inputs["pixel_values"].shape[-2:])
        outputs = super()._forward(model_inputs)
        if image is not None:
            outputs["logits"] = self._zoomed_logits(image, outputs["logits"], input_size, zoom_threshold)
        return outputs

    def _zoomed_logits(
        self, image: np.ndarray, logits: torch.Tensor, input_size: tuple[int, int], threshold: float
    ) -> torch.Tensor:
        """`(1, 1, height, width)` logits at the image's size after zoom's second pass (`carseg_hf.zoom`), if any.

        A crop's pass is pasted in where it is kept; a pass of the whole image at a smaller input (a close-up's, or a
        tall frame's) replaces the first.

        Args:
            image: `(height, width, 3)` uint8, the decoded input.
            logits: `(1, 1, h, w)` logits of the first pass.
            input_size: `(h, w)` of the first pass's network input.
            threshold: The car probability threshold of the masks that zoom compares.
        """
        height, width = image.shape[:2]
        full = self.image_processor.resize_logits(logits.float(), (height, width))  # (1, 1, height, width)
        kept = run_second_pass(
            (torch.sigmoid(full[0, 0]) > threshold).cpu().numpy(),  # (height, width) bool
            input_size,
            (self.image_processor.size["height"], self.image_processor.size["width"]),
            self.image_processor.keep_aspect_ratio,
            threshold,
            segment_whole=lambda size: self.image_processor.resize_logits(
                self._second_pass(image, size), (height, width)
            ),  # (1, 1, height, width)
            segment_crop=lambda box: self.image_processor.resize_logits(
                self._second_pass(np.ascontiguousarray(image[box.slices])), box.size
            ),  # (1, 1, crop_height, crop_width)
            probabilities_of=lambda pass_logits: torch.sigmoid(pass_logits[0, 0]).cpu().numpy(),
        )
        if kept is None:
            return full
        if kept.zoom_box is None:  # a whole-image pass replaces the first
            return kept.output
        rows, columns = kept.zoom_box.slices
        full[..., rows, columns] = kept.output  # the crop's pass
        return full

    def _second_pass(self, image: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
        """`(1, 1, h, w)` float32 logits of one `(height, width, 3)` uint8 image, at `size` = `(h, w)` if given."""
        resize = self.image_processor.exact_size_kwargs(size)
        pixel_values = self.image_processor(images=[image], return_tensors="pt", **resize)["pixel_values"]
        return self.model(pixel_values=pixel_values.to(device=self.device, dtype=self.dtype)).logits.float()

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
