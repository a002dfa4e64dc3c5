"""The model card (README.md with YAML metadata) that `carseg push` uploads with a checkpoint."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .configuration_carseg import CarSegConfig

#: Dataset id written to the card's `datasets` field when none is given.
DEFAULT_DATASET = "carvana-image-masking-challenge"
DEFAULT_LICENSE = "apache-2.0"
DEFAULT_TAGS = ("image-segmentation", "semantic-segmentation", "carvana", "u-net", "carseg", "pytorch")

#: A dataset id the Hub's `datasets` field accepts (`name` or `org/name`); other descriptions go into the text only.
_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

#: Metric names that hold the validation dice, in order of preference; `best_validation_dice` is what
#: `training/train.py` writes to `all_results.json` (the dice of the model in `best/`).
_DICE_KEYS = ("eval_dice", "val_dice", "dice", "best_dice", "validation_dice", "best_validation_dice")


def dice_from_metrics(metrics: Mapping[str, Any] | None) -> float | None:
    """The validation dice held by a metrics mapping, under the first of `_DICE_KEYS` it has.

    Args:
        metrics: Evaluation results, e.g. training's `all_results.json`; None or empty for none.

    Returns:
        The dice, or None when there are no metrics.

    Raises:
        ValueError: If the metrics hold no accepted dice key, or the dice is not a number in [0, 1].
    """
    if not metrics:
        return None
    for key in _DICE_KEYS:
        value = metrics.get(key)
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"metric {key!r} must be a number, got {value!r}") from error
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"metric {key!r} must be a dice in [0, 1], got {value}")
        return value
    raise ValueError(
        f"the metrics hold no dice under any accepted name (got {', '.join(sorted(metrics))}); expected one of "
        f"{', '.join(_DICE_KEYS)}, e.g. training's OUTPUT_DIR/all_results.json"
    )


def _architecture(config: CarSegConfig) -> str:
    if config.encoder_name:
        return f"U-Net with a `{config.encoder_name}` encoder (segmentation-models-pytorch), depth {config.depth}"
    return (
        f"U-Net with {config.depth} encoder levels of {config.encoder_channels} channels, a "
        f"{config.center_channels}-channel center, {config.decoder_convs} convolutions per decoder level, "
        f"{config.upsampling} upsampling and a 1x1 head with one logit per pixel"
    )


def _usage(repo_id: str) -> str:
    return f"""## How to use

With the `carseg` package installed (`pip install carseg-hf`), the Auto classes resolve the model without remote code:

```python
import carseg_hf  # registers the carseg classes with transformers' Auto classes
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

model = AutoModelForSemanticSegmentation.from_pretrained("{repo_id}")
processor = AutoImageProcessor.from_pretrained("{repo_id}")
inputs = processor(images=image, return_tensors="pt")
outputs = model(**inputs)  # logits: (batch, 1, height, width)
masks = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])  # 0/1 tensors
```

Without the package, load the code stored in this repo. Pin a revision (a commit sha) so that the code you run is the
code you reviewed:

```python
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

revision = "COMMIT_SHA"  # see the repo's commit history
model = AutoModelForSemanticSegmentation.from_pretrained("{repo_id}", trust_remote_code=True, revision=revision)
processor = AutoImageProcessor.from_pretrained("{repo_id}", trust_remote_code=True, revision=revision)
```

The `image-segmentation` pipeline returns one 0/255 mask per label (`background`, `car`):

```python
import carseg_hf
from transformers import pipeline

segmenter = pipeline("image-segmentation", model="{repo_id}")
car_mask = next(r["mask"] for r in segmenter("car.jpg") if r["label"] == "car")
```

Command line, local demo, and a Gradio Space (set the Space variable `CARSEG_MODEL` to `{repo_id}`):

```bash
carseg predict --model {repo_id} car.jpg
CARSEG_MODEL={repo_id} carseg demo
```
"""


def _recipe_lines(training_args: Mapping[str, Any]) -> str:
    """The optimiser, schedule and early-stopping lines, from the arguments the run recorded."""
    optimizer = training_args.get("optimizer", "Adam")
    lines = f"- Optimiser: {optimizer}, learning rate {training_args.get('learning_rate', 'not recorded')}"
    scheduler = training_args.get("lr_scheduler")
    if scheduler and scheduler != "constant":
        lines += f", `{scheduler}` schedule"
    lines += ".\n"
    patience = training_args.get("early_stopping_patience")
    if patience == 0:
        lines += "- No early stopping.\n"
    elif patience is not None:
        min_delta = training_args.get("early_stopping_min_delta", "not recorded")
        lines += f"- Early stopping on the validation dice: patience {patience}, `min_delta` {min_delta}.\n"
    return lines


def _training(training_args: Mapping[str, Any] | None, dataset: str | None, config: CarSegConfig) -> str:
    text = f"""## Training recipe

- Data: {dataset or "the Kaggle Carvana Image Masking Challenge training set"}.

- Loss: {config.loss_description()}.
"""
    if training_args:
        text += _recipe_lines(training_args)
    else:
        text += (
            "- The run's arguments were not recorded with this checkpoint. The carseg reference recipe is Adam at\n"
            "  learning rate 1e-4 with early stopping on the validation dice at `min_delta` 1e-4.\n"
        )
    augmentation = (training_args or {}).get("augmentation")
    if augmentation is None:
        augmentation = "random shift, scale and rotation, applied identically to the image and its mask"
    text += f"- Augmentation: {augmentation}.\n"
    if training_args:
        args = json.dumps(dict(training_args), indent=2, sort_keys=True, default=str)
        text += f"\nArguments of this run:\n\n```json\n{args}\n```\n"
    return text


def _evaluation(metrics: Mapping[str, Any] | None, dice: float | None) -> str:
    text = "## Evaluation\n\nThe metric is the Dice coefficient per image, averaged over the validation images.\n"
    if dice is None:
        return text + "\nNo evaluation results were recorded with this checkpoint.\n"
    text += f"\nValidation dice: **{dice:.4f}**.\n"
    others = {k: v for k, v in (metrics or {}).items() if k not in _DICE_KEYS}
    if others:
        rows = "\n".join(f"| {key} | {value} |" for key, value in sorted(others.items()))
        text += f"\n| metric | value |\n| --- | --- |\n{rows}\n"
    return text


_LIMITATIONS = """## Intended use

Foreground/background masks of a single car photographed on a studio turntable, as in the Kaggle Carvana Image
Masking Challenge: background removal for car listings and similar product photography.

## Limitations

- The model separates one car from the background; it does not detect or count cars, and it was not trained on
  street scenes, several cars, occlusions or night shots.
- A model trained on synthetic renders (such as the bundled `carseg-synth` checkpoint) may not transfer to real
  photos: check it on your own images before relying on it.
- Thin parts (antennas, mirrors, wheel spokes) and transparent glass are the usual error areas.

## What `trust_remote_code=True` runs

This repo stores the Python files named in `auto_map` (`configuration_carseg.py`, `modeling_carseg.py`,
`image_processing_carseg.py` and the helpers they import). With `trust_remote_code=True`, transformers downloads and
imports them, so they run with your permissions. Read them first and pin `revision=` to the commit you read. The
weights are stored as `model.safetensors` only; no pickled file is read.
"""


def _eval_results(dataset: str, dice: float | None) -> list[EvalResult] | None:
    """The `model-index` entry of the card: the validation dice on `dataset`, or None without a dice."""
    if dice is None:
        return None
    return [
        EvalResult(
            task_type="image-segmentation",
            task_name="Binary car segmentation",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="validation",
            metric_type="dice",
            metric_name="Dice",
            metric_value=dice,
        )
    ]


def _introduction(repo_id: str, config: CarSegConfig) -> str:
    """The card's title and first paragraph: what the model does and its architecture."""
    name = repo_id.split("/")[-1]
    return (
        f"# {name}\n\nBinary car segmentation (Kaggle Carvana Image Masking Challenge) with the `carseg` "
        f"transformers model: a {_architecture(config)}. It outputs one logit per pixel; label 1 (`car`) is "
        f"predicted where its sigmoid exceeds the processor's threshold.\n\n"
    )


def build_model_card(
    repo_id: str,
    config: CarSegConfig,
    metrics: Mapping[str, Any] | None = None,
    training_args: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    **metadata: Any,
) -> ModelCard:
    """Build the model card of a carseg checkpoint.

    Args:
        repo_id: The Hub repo id (`org/name`) the card describes; used in the usage snippets.
        config: The model's configuration.
        metrics: Evaluation results; the dice is read from `eval_dice`, `val_dice`, `dice`, `best_dice`,
            `validation_dice` or `best_validation_dice` (training's `all_results.json`) and goes into the
            `model-index`.
        training_args: Arguments of the training run, listed in the card.
        dataset: Dataset id for the `datasets` field (defaults to the Carvana challenge). A free-text description
            (e.g. "the local folder my-cars") is written into the card text and names the `model-index` data set,
            and the YAML then has no `datasets` field: a card never claims a Hub data set it was not trained on.
        **metadata: Extra YAML fields (e.g. `license`, `tags`), overriding the defaults.

    Returns:
        A `huggingface_hub.ModelCard` whose YAML has `library_name: transformers`,
        `pipeline_tag: image-segmentation`, `license`, `tags`, `datasets` and, with a dice, `model-index`.

    Raises:
        ValueError: If the metrics hold no dice (see `dice_from_metrics`) or it is not a number in [0, 1].
    """
    description = dataset
    dataset_id = DEFAULT_DATASET if dataset is None else (dataset if _DATASET_ID.match(dataset) else None)
    dice = dice_from_metrics(metrics)
    fields: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "image-segmentation",
        "license": DEFAULT_LICENSE,
        "tags": list(DEFAULT_TAGS),
        **({"datasets": [dataset_id]} if dataset_id else {}),
    }
    fields.update(metadata)
    card_data = ModelCardData(model_name=repo_id, eval_results=_eval_results(dataset_id or dataset, dice), **fields)
    text = (
        _introduction(repo_id, config)
        + _usage(repo_id)
        + "\n"
        + _training(training_args, description, config)
        + "\n"
        + _evaluation(metrics, dice)
        + "\n"
        + _LIMITATIONS
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}")
