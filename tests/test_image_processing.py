import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegImageProcessor, CarSegImageProcessorPil, ImageDecodeError
from carseg_hf.image_io import load_mask, load_rgb
from carseg_hf.image_processing_base_carseg import CarSegImageProcessorKwargs
from tests.conftest import DEVICES


def _rgb(height=40, width=60, seed=0):
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def test_output_dtypes_shapes_and_range(tiny_processor):
    batch = tiny_processor([_rgb(), _rgb(seed=1)], masks=[np.zeros((40, 60), np.uint8)] * 2)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["pixel_values"].shape == (2, 3, 64, 96)
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == (2, 64, 96)
    low = (0 - max(tiny_processor.image_mean)) / min(tiny_processor.image_std)
    high = (1 - min(tiny_processor.image_mean)) / min(tiny_processor.image_std)
    assert batch["pixel_values"].min() >= low - 1e-6 and batch["pixel_values"].max() <= high + 1e-6


def test_normalisation_values():
    processor = CarSegImageProcessor(do_resize=False)
    white = np.full((2, 2, 3), 255, np.uint8)
    pixels = processor(white)["pixel_values"][0, :, 0, 0]
    expected = [(1 - m) / s for m, s in zip(processor.image_mean, processor.image_std)]
    assert torch.allclose(pixels, torch.tensor(expected))


def test_native_size_keeps_resolution():
    processor = CarSegImageProcessor(do_resize=False)
    assert processor(_rgb(37, 53))["pixel_values"].shape == (1, 3, 37, 53)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "I;16"])
def test_pil_modes_become_rgb(mode):
    base = Image.fromarray(_rgb(20, 30))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
        assert image.mode.startswith("I;16")
    else:
        image = base.convert(mode)
    array = load_rgb(image)
    assert array.shape == (20, 30, 3) and array.dtype == np.uint8


def test_sixteen_bit_png_scales_to_8_bit(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(path)
    assert load_rgb(path).min() == 255


def test_rgba_transparent_becomes_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert (load_rgb(rgba) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(_rgb(20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_rgb(path).shape == (30, 20, 3)


def test_torch_and_numpy_inputs_agree(tiny_processor):
    array = _rgb()
    from_numpy = tiny_processor(array)["pixel_values"]
    from_torch_chw = tiny_processor(torch.from_numpy(array).permute(2, 0, 1))["pixel_values"]
    from_float = tiny_processor(array.astype(np.float32) / 255.0)["pixel_values"]
    assert torch.equal(from_numpy, from_torch_chw)
    assert torch.allclose(from_numpy, from_float, atol=1e-5)


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[0, 1], [1, 0]], np.uint8),
        np.array([[0, 255], [255, 0]], np.uint8),
        np.array([[False, True], [True, False]]),
        np.array([[3, 250], [230, 20]], np.uint8),  # lossy 0/255
    ],
)
def test_mask_normalisation(mask):
    assert load_mask(mask).tolist() == [[0, 1], [1, 0]]


def test_palette_gif_mask_reads_indices(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 1]], np.uint8), mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    path = tmp_path / "m.gif"
    image.save(path)
    reopened = Image.open(path)
    assert reopened.mode == "P"
    assert load_mask(path).tolist() == [[0, 1], [1, 1]]


def test_ambiguous_mask_is_refused():
    with pytest.raises(ImageDecodeError, match="ambiguous mask values"):
        load_mask(np.array([[0, 128], [64, 255]], np.uint8))


def test_masks_resize_with_nearest_and_stay_binary(tiny_processor):
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:50] = 255
    labels = tiny_processor(_rgb(), masks=mask)["labels"]
    assert set(torch.unique(labels).tolist()) == {0, 1}


def test_mask_size_mismatch_names_both(tiny_processor):
    with pytest.raises(ImageDecodeError, match="must match its image's size"):
        tiny_processor(_rgb(40, 60), masks=np.zeros((41, 60), np.uint8))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-there.jpg", "no such file"),
        (12, "unsupported image input"),
        (np.zeros((5, 5, 7), np.uint8), "expected an image of shape"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (Image.new("HSV", (4, 4)), "unsupported image mode"),
    ],
)
def test_unsupported_inputs_name_what_was_received(value, message):
    with pytest.raises(ImageDecodeError, match=message):
        load_rgb(value)


def test_empty_truncated_and_non_image_files(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    buffer = io.BytesIO()
    Image.fromarray(_rgb(200, 200)).save(buffer, format="JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageDecodeError, match="empty"):
        load_rgb(empty)
    with pytest.raises(ImageDecodeError, match="not a readable image"):
        load_rgb(text)
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        load_rgb(truncated)


def test_oversized_image_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    with pytest.raises(ImageDecodeError, match="over the limit"):
        load_rgb(path, max_pixels=1000)


def test_post_process_resizes_and_thresholds(tiny_processor):
    logits = torch.tensor([[[[-3.0, 3.0], [0.1, -0.1]]]])
    masks = tiny_processor.post_process_semantic_segmentation(logits)
    assert masks[0].tolist() == [[0, 1], [1, 0]]
    assert masks[0].dtype == torch.int64
    strict = tiny_processor.post_process_semantic_segmentation(logits, threshold=0.9)
    assert strict[0].tolist() == [[0, 1], [0, 0]]
    resized = tiny_processor.post_process_semantic_segmentation(logits, target_sizes=[(5, 7)])
    assert resized[0].shape == (5, 7)


def test_post_process_rejects_bad_logits(tiny_processor):
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        tiny_processor.post_process_semantic_segmentation(torch.zeros(1, 2, 4, 4))


def test_processor_round_trip(tmp_path):
    processor = CarSegImageProcessor(size={"height": 32, "width": 48}, threshold=0.3)
    processor.save_pretrained(tmp_path)
    loaded = CarSegImageProcessor.from_pretrained(tmp_path)
    assert loaded.size == {"height": 32, "width": 48} and loaded.threshold == 0.3


def test_a_mask_at_the_stored_size_of_an_exif_rotated_photo_is_explained(tmp_path, tiny_processor):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x20, displayed 20x30
    path = tmp_path / "rotated.jpg"
    Image.fromarray(_rgb(20, 30)).save(path, exif=exif)
    batch = tiny_processor(str(path), masks=np.zeros((30, 20), np.uint8), do_resize=False)  # the displayed size
    assert batch["labels"].shape == (1, 30, 20)
    with pytest.raises(ImageDecodeError, match=r"rotated\.jpg' is 20x30 as displayed .*the mask has the stored size"):
        tiny_processor(str(path), masks=np.zeros((20, 30), np.uint8))


# The two backends: CarSegImageProcessor (torch) and CarSegImageProcessorPil (PIL).


def _grey_level_difference(processor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The difference of two normalised batches, in grey levels before normalisation (0 to 255 scale)."""
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    return (first - second) * std / processor.rescale_factor


def test_the_backends_share_one_kwargs_spec_and_post_processing():
    assert CarSegImageProcessor.valid_kwargs is CarSegImageProcessorPil.valid_kwargs is CarSegImageProcessorKwargs
    assert {"max_pixels", "threshold", "size", "image_mean"} <= set(CarSegImageProcessorKwargs.__annotations__)
    assert CarSegImageProcessor().backend == "torchvision" and CarSegImageProcessorPil().backend == "pil"
    for name in ("post_process_semantic_segmentation", "resize_logits", "resize_mask", "preprocess"):
        assert getattr(CarSegImageProcessor, name) is getattr(CarSegImageProcessorPil, name), name
    logits = torch.randn(2, 1, 5, 7)
    torch_masks = CarSegImageProcessor().post_process_semantic_segmentation(logits, [(9, 11), (4, 6)], 0.4)
    pil_masks = CarSegImageProcessorPil().post_process_semantic_segmentation(logits, [(9, 11), (4, 6)], 0.4)
    assert all(torch.equal(a, b) for a, b in zip(torch_masks, pil_masks))


@pytest.mark.parametrize(
    ("image_size", "target"),
    [((40, 60), (64, 96)), ((300, 200), (96, 64)), ((123, 457), (64, 64)), ((64, 96), (64, 96)), ((37, 53), (33, 47))],
)
def test_the_backends_agree_within_one_grey_level(image_size, target):
    images = [_rgb(*image_size, seed=seed) for seed in range(2)]
    masks = [(np.random.default_rng(seed).random(image_size) > 0.5).astype(np.uint8) for seed in range(2)]
    size = {"height": target[0], "width": target[1]}
    torch_batch = CarSegImageProcessor(size=size)(images, masks=masks)
    pil_batch = CarSegImageProcessorPil(size=size)(images, masks=masks)
    assert torch_batch["pixel_values"].shape == pil_batch["pixel_values"].shape == (2, 3, *target)
    difference = _grey_level_difference(CarSegImageProcessor(), torch_batch["pixel_values"], pil_batch["pixel_values"])
    assert difference.abs().max() <= 1.01 and difference.abs().mean() < 0.25
    if image_size == target:
        assert torch.equal(torch_batch["pixel_values"], pil_batch["pixel_values"])
    assert torch.equal(torch_batch["labels"], pil_batch["labels"])  # masks: the same nearest-neighbour code


def test_the_backends_agree_exactly_at_native_size():
    image = _rgb(37, 53)
    torch_values = CarSegImageProcessor(do_resize=False)(image)["pixel_values"]
    assert torch.equal(torch_values, CarSegImageProcessorPil(do_resize=False)(image)["pixel_values"])


def test_the_backends_resize_numpy_images_alike():
    image = _rgb(123, 457)
    size = {"height": 64, "width": 96}
    torch_resized = CarSegImageProcessor().resize_image(image, size)
    pil_resized = CarSegImageProcessorPil().resize_image(image, size)
    assert torch_resized.shape == pil_resized.shape == (64, 96, 3) and torch_resized.dtype == np.uint8
    assert np.abs(torch_resized.astype(int) - pil_resized.astype(int)).max() <= 1
    assert CarSegImageProcessor().resize_image(image, {"height": 123, "width": 457}) is image


def test_preprocess_tensors_equals_preprocess_on_the_same_pixels(tiny_processor):
    images = [_rgb(seed=seed) for seed in range(3)]
    tensors = [torch.from_numpy(image).permute(2, 0, 1) for image in images]  # (3, height, width) uint8 each
    batch = tiny_processor.preprocess_tensors(tensors, (64, 96), torch.channels_last)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, tiny_processor(images)["pixel_values"])
    assert CarSegImageProcessor.from_processor(tiny_processor) is tiny_processor
    native = tiny_processor.preprocess_tensors(tensors, None)
    assert torch.equal(native, tiny_processor(images, do_resize=False)["pixel_values"])
    with pytest.raises(ValueError, match="uint8"):
        tiny_processor.preprocess_tensors([tensors[0].float()], None)
    with pytest.raises(ValueError, match="at least one image"):
        tiny_processor.preprocess_tensors([], None)
    with pytest.raises(ValueError, match=r"different sizes \[\(30, 20\), \(40, 60\)\]"):
        tiny_processor.preprocess_tensors([tensors[0], torch.zeros(3, 30, 20, dtype=torch.uint8)], None)


def test_preprocess_tensors_takes_the_parameters_of_a_pil_processor():
    processor = CarSegImageProcessorPil(size={"height": 64, "width": 96}, image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
    tensors = [torch.from_numpy(_rgb(seed=seed)).permute(2, 0, 1) for seed in range(2)]
    expected = CarSegImageProcessor(**processor.to_dict()).preprocess_tensors(tensors, (64, 96))
    converted = CarSegImageProcessor.from_processor(processor)
    assert type(converted) is CarSegImageProcessor
    assert torch.equal(converted.preprocess_tensors(tensors, (64, 96)), expected)
    white = converted.preprocess_tensors([torch.full((3, 2, 2), 255, dtype=torch.uint8)], None)
    assert torch.allclose(white, torch.ones_like(white))  # (1 - 0.5) / 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_device_argument_puts_the_pixel_values_there(tiny_processor, device):
    image, mask = _rgb(123, 457), np.zeros((123, 457), np.uint8)
    for processor in (tiny_processor, CarSegImageProcessorPil(size={"height": 64, "width": 96})):
        batch = processor(image, masks=mask, device=device)
        assert batch["pixel_values"].device.type == device and batch["pixel_values"].shape == (1, 3, 64, 96)
        assert batch["labels"].device.type == "cpu"
        on_cpu = processor(image)["pixel_values"]
        difference = _grey_level_difference(processor, batch["pixel_values"].cpu(), on_cpu).abs()
        assert difference.max() <= (0.01 if device == "cpu" else 1.01), type(processor).__name__  # CUDA float order
        tensors = [torch.from_numpy(image).permute(2, 0, 1).to(device)]
        on_device = tiny_processor.preprocess_tensors(tensors, (64, 96))
        assert on_device.device.type == device
        assert torch.allclose(on_device.cpu(), tiny_processor(image, device=device)["pixel_values"].cpu())


def test_pil_processor_saves_as_the_torch_type_and_loads_back(tmp_path):
    CarSegImageProcessorPil(size={"height": 32, "width": 48}, threshold=0.3).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "CarSegImageProcessor"  # as transformers' PIL backends save
    loaded = CarSegImageProcessorPil.from_pretrained(tmp_path)
    assert isinstance(loaded, CarSegImageProcessorPil)
    assert loaded.size == {"height": 32, "width": 48} and loaded.threshold == 0.3


def test_from_pretrained_overrides_go_through_the_checks(tmp_path):
    CarSegImageProcessor(size={"height": 32, "width": 48}).save_pretrained(tmp_path)
    for cls in (CarSegImageProcessor, CarSegImageProcessorPil):
        assert cls.from_pretrained(tmp_path, threshold=0.25, max_pixels=None).threshold == 0.25
        assert cls.from_pretrained(tmp_path, max_pixels=None).max_pixels is None
        with pytest.raises(ValueError, match="threshold must be a probability"):
            cls.from_pretrained(tmp_path, threshold=1.5)


def test_masks_one_per_image_and_segmentation_maps_alias(tiny_processor):
    masks = [np.zeros((40, 60), np.uint8), np.ones((40, 60), np.uint8)]
    with pytest.raises(ValueError, match="got 2 images but 1 masks; pass one mask per image"):
        tiny_processor([_rgb(), _rgb(seed=1)], masks=masks[:1])
    by_alias = tiny_processor([_rgb(), _rgb(seed=1)], segmentation_maps=masks, do_resize=False)
    assert by_alias["labels"].shape == (2, 40, 60)
    assert by_alias["labels"][0].sum() == 0 and by_alias["labels"][1].sum() == 40 * 60
    assert torch.equal(
        by_alias["labels"], tiny_processor([_rgb(), _rgb(seed=1)], masks=masks, do_resize=False)["labels"]
    )
    with pytest.raises(ValueError, match="too small"):  # arguments are checked before the inputs
        tiny_processor([_rgb()], masks=masks, size={"height": 0, "width": 8})


@pytest.mark.parametrize("cls", [CarSegImageProcessor, CarSegImageProcessorPil])
def test_size_must_be_whole_pixels_large_enough_for_the_network(cls, tmp_path):
    assert cls(size=64).size == {"height": 64, "width": 64}
    assert cls(size=(np.int64(32), 48)).size == {"height": 32, "width": 48}
    for bad, reason in (
        ({"height": 16, "width": 64}, "at least 32 pixels"),
        (8, "at least 32 pixels"),
        ({"height": 640.5, "width": 960}, "whole numbers of pixels"),
        ((True, 64), "whole numbers of pixels"),
        ({"height": "640", "width": 960}, "whole numbers of pixels"),
        ({"height": 640}, "size must be"),
    ):
        with pytest.raises(ValueError, match=reason):
            cls(size=bad)
    cls(size={"height": 64, "width": 96}).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="at least 32 pixels"):  # a saved config is checked too
        cls.from_pretrained(tmp_path, size={"height": 31, "width": 96})
    with pytest.raises(ValueError, match="at least 32 pixels"):  # and a per-call override
        cls(size=64)([_rgb()], size={"height": 64, "width": 20})


def test_a_decompression_bomb_is_refused_as_too_large_not_as_unreadable(tmp_path):
    from demo_files import write_png_header_only

    bomb = write_png_header_only(tmp_path / "bomb.png", 30_000, 30_000)  # beyond PIL's own bomb limit
    with pytest.raises(ImageDecodeError, match=r"bomb.png: the image is over the limit of 30,000,000 pixels"):
        load_rgb(bomb)
