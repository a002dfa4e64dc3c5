import pytest
import torch
from transformers.modeling_outputs import SemanticSegmenterOutput

from carseg_hf import CarSegConfig, CarSegForSemanticSegmentation, bce_dice_loss
from tests.conftest import tiny_config


def test_forward_backward_loss_finite(tiny_model):
    tiny_model.train()
    pixel_values = torch.randn(2, 3, 40, 56)
    labels = (torch.rand(2, 40, 56) > 0.5).long()
    output = tiny_model(pixel_values=pixel_values, labels=labels)
    assert isinstance(output, SemanticSegmenterOutput)
    assert output.logits.shape == (2, 1, 40, 56)
    assert torch.isfinite(output.loss) and output.loss.item() > 0
    output.loss.backward()
    grads = [p.grad for p in tiny_model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(("height", "width"), [(67, 93), (1, 1), (8, 8), (64, 96), (33, 200)])
def test_any_resolution_keeps_input_size(tiny_model, height, width):
    with torch.no_grad():
        logits = tiny_model(torch.randn(1, 3, height, width)).logits
    assert logits.shape == (1, 1, height, width)


def test_divisible_input_is_not_padded_or_resized(tiny_model):
    x = torch.randn(1, 3, 16, 24)  # the tiny config divides by 8: no padding needed
    with torch.no_grad():
        assert torch.equal(tiny_model(x).logits, tiny_model.unet(x))


def test_save_load_round_trip_identical_logits(tiny_model, tmp_path):
    x = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        before = tiny_model(x).logits
    tiny_model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    assert not any(name.endswith(".bin") for name in files)
    loaded = CarSegForSemanticSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = loaded(x).logits
    assert torch.equal(before, after)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((3, 32, 32), "Add a batch dimension"), ((1, 32, 32, 3), "channels-last"), ((1, 1, 32, 32), "shape")],
)
def test_bad_input_shape_has_helpful_error(tiny_model, shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(torch.randn(*shape))


def test_integer_input_is_refused(tiny_model):
    with pytest.raises(ValueError, match="floating-point"):
        tiny_model(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


def test_bce_dice_loss_values():
    labels = torch.tensor([[[0, 1], [1, 0]]])
    perfect = torch.where(labels.bool(), 20.0, -20.0)[:, None].float()
    wrong = -perfect
    assert bce_dice_loss(perfect, labels).item() < 1e-3
    assert bce_dice_loss(wrong, labels).item() > 10
    # Ignored pixels do not count.
    ignored = torch.tensor([[[0, 1], [255, 255]]])
    half_wrong = torch.tensor([[[[-20.0, 20.0], [20.0, -20.0]]]])
    assert bce_dice_loss(half_wrong, ignored).item() < 1e-3


def test_bce_dice_loss_refuses_0_255_labels():
    with pytest.raises(ValueError, match="binary"):
        bce_dice_loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[0, 128], [128, 0]]]), ignore_index=None)


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(tiny_config())
    x, y = torch.randn(1, 3, 32, 32), (torch.rand(1, 32, 32) > 0.5).long()
    model.train()
    model(x, labels=y).loss.backward()
    reference = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.enable_activation_checkpointing()  # what train.py --gradient_checkpointing calls
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    model(x.requires_grad_(), labels=y).loss.backward()
    for expected, param in zip(reference, model.parameters()):
        assert torch.allclose(expected, param.grad, atol=1e-5)


def test_smp_encoder_variant_forward():
    config = CarSegConfig(encoder_name="resnet18", encoder_channels=(16, 32, 64))
    model = CarSegForSemanticSegmentation(config).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 45, 61)).logits
    assert logits.shape == (1, 1, 45, 61)


def test_init_weights_are_kaiming_and_bn_identity(tiny_model):
    conv = tiny_model.unet.encoder[0].blocks[0][0]
    bn = tiny_model.unet.encoder[0].blocks[0][1]
    assert conv.weight.std() > 0
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_default_model_full_resolution_forward():
    torch.manual_seed(0)
    model = CarSegForSemanticSegmentation(CarSegConfig()).eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, 1280, 1918).contiguous(memory_format=torch.channels_last)).logits
    assert logits.shape == (1, 1, 1280, 1918)
    assert torch.isfinite(logits).all()
