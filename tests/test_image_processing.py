import io

import numpy as np
import pytest
import torch
from PIL import Image

from carseg_hf import CarSegImageProcessor, ImageDecodeError
from carseg_hf.image_io import load_mask, load_rgb


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
