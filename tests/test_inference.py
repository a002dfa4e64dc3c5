import threading

import numpy as np
import torch
from PIL import Image

from carseg_hf import CarSegImageProcessorPil
from carseg_hf.inference import Segmenter, predict_logits


def _image(seed=0, height=45, width=70):
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8))


def test_segment_matches_processor_post_processing(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    image = _image()
    result = segmenter.segment(image, threshold=0.5)
    assert result.mask.shape == (45, 70) and result.mask.dtype == np.uint8
    assert result.input_size == (64, 96)
    with torch.no_grad():
        logits = tiny_model(tiny_processor(image)["pixel_values"]).logits
    expected = tiny_processor.post_process_semantic_segmentation(logits, target_sizes=[(45, 70)])[0].numpy()
    assert np.array_equal(result.mask, expected)


def test_native_size_and_tta(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    result = segmenter.segment(_image(), native_size=True, tta=True)
    assert result.input_size == (45, 70)
    x = tiny_processor(_image(), do_resize=False)["pixel_values"]
    with torch.no_grad():
        manual = 0.5 * (tiny_model(x).logits + torch.flip(tiny_model(torch.flip(x, dims=[-1])).logits, dims=[-1]))
        assert torch.allclose(predict_logits(tiny_model, x, tta=True), manual, atol=1e-6)
    assert np.allclose(result.probabilities, torch.sigmoid(manual)[0, 0].numpy(), atol=1e-5)


def test_concurrent_calls_give_identical_results(tiny_model, tiny_processor):
    segmenter = Segmenter(tiny_model, tiny_processor)
    reference = segmenter.segment(_image(3)).mask
    results = []

    def worker():
        results.append(segmenter.segment(_image(3)).mask)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(np.array_equal(r, reference) for r in results)


def test_segmenter_takes_either_backend(tiny_model, tiny_processor):
    pil_processor = CarSegImageProcessorPil(**tiny_processor.to_dict())
    image = _image(5)
    for processor in (tiny_processor, pil_processor):
        result = Segmenter(tiny_model, processor).segment(image)
        with torch.no_grad():
            logits = tiny_model(processor(image)["pixel_values"]).logits
        expected = processor.post_process_semantic_segmentation(logits, target_sizes=[(45, 70)])[0].numpy()
        assert np.array_equal(result.mask, expected), type(processor).__name__


def test_time_spent_waiting_for_another_request_is_reported_apart(tiny_model, tiny_processor):
    import time as clock

    from carseg_hf.demo.outputs import timing_text

    segmenter = Segmenter(tiny_model, tiny_processor)
    image = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    assert segmenter.segment(image).waited_seconds < 0.05  # alone: no wait
    results = []
    with segmenter._lock:  # another request's forward pass holds the model
        worker = threading.Thread(target=lambda: results.append(segmenter.segment(image)))
        started = clock.perf_counter()
        worker.start()
        clock.sleep(0.3)
    worker.join()
    elapsed = clock.perf_counter() - started
    assert results[0].waited_seconds >= 0.25
    assert results[0].seconds <= elapsed - results[0].waited_seconds + 0.01
    assert "ms waiting for another request)" in timing_text(results[0], tta=False, threshold=0.5)
    assert "waiting" not in timing_text(segmenter.segment(image), tta=False, threshold=0.5)
