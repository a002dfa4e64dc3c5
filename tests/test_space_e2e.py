"""End to end: launch the demo on 127.0.0.1 with a free port and drive its `/segment` endpoint with gradio_client."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from demo_files import (
    box_mask,
    free_port,
    save_tiny_model,
    write_empty,
    write_image_variant,
    write_jpeg,
    write_mask,
    write_not_an_image,
    write_png_header_only,
    write_truncated_jpeg,
)

from carseg_hf.image_io import load_mask, load_rgb
from carseg_hf.metrics import dice_score, iou_score
from carseg_hf.rle import rle_decode

gradio_client = pytest.importorskip("gradio_client")

MAX_PIXELS = 200_000


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from carseg_hf.demo.app import build_demo

    torch.set_num_threads(1)
    model_dir = save_tiny_model(tmp_path_factory.mktemp("model"))
    demo = build_demo(str(model_dir), device="cpu", max_pixels=MAX_PIXELS, examples_dir=model_dir / "no-examples")
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def segment(client, image, mask=None, threshold=0.5, tta=False, resolution="processor"):
    handle = gradio_client.handle_file
    mask = handle(str(mask)) if mask is not None else None
    return client.predict(handle(str(image)), mask, threshold, tta, resolution, api_name="/segment")


def test_only_segment_is_public(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(api) == ["/segment"]
    labels = [output["label"] for output in api["/segment"]["returns"]]
    assert labels[:4] == [
        "Photo / predicted car",
        "Mask PNG (0/255)",
        "Kaggle RLE",
        "Timing and settings",
    ]  # all named


def test_predict(client, tmp_path):
    image = write_jpeg(tmp_path / "car.jpg", 40, 60)
    pair, mask_png, rle, info, metrics, errors = segment(client, image)
    before, after = (load_rgb(path) for path in pair)
    assert before.shape == after.shape == (40, 60, 3)
    mask = load_mask(mask_png)
    assert mask_png.endswith("car_mask.png") and mask.shape == (40, 60)
    assert np.array_equal(rle_decode(rle, (40, 60)), mask)
    assert "network input 96×64" in info and "cpu" in info
    assert "zoom: first pass kept" in info  # on by default; a 60×40 photo is smaller than the network's input
    assert metrics["data"] == [] and errors is None
    handle = gradio_client.handle_file
    *_, info, _, _ = client.predict(handle(str(image)), None, 0.5, False, "processor", False, api_name="/segment")
    assert "zoom off" in info


def test_predict_with_ground_truth_scores_with_carseg_metrics(client, tmp_path):
    image = write_jpeg(tmp_path / "car.jpg", 40, 60, seed=4)
    truth = box_mask(40, 60)
    gt = write_mask(tmp_path / "car_mask.gif", truth, "palette")
    _, mask_png, _, _, metrics, errors = segment(client, image, gt, threshold=0.45, tta=True, resolution="native")
    pred = load_mask(mask_png)
    (row,) = metrics["data"]
    scores = dict(zip(metrics["headers"], row))
    assert 0.0 < scores["dice"] < 1.0
    assert scores["dice"] == pytest.approx(dice_score(pred, truth), abs=1e-6)
    assert scores["IoU"] == pytest.approx(iou_score(pred, truth), abs=1e-6)
    assert scores["FP px"] == int(((pred == 1) & (truth == 0)).sum())
    assert scores["FN px"] == int(((pred == 0) & (truth == 1)).sum())
    assert load_rgb(errors).shape == (40, 60, 3)


@pytest.mark.parametrize(
    ("kind", "suffix", "shape"),
    [("gray", ".png", (40, 60)), ("rgba", ".png", (40, 60)), ("cmyk", ".jpg", (40, 60)), ("16bit", ".png", (40, 60))]
    + [("exif", ".jpg", (60, 40))],
)
def test_image_kinds(client, tmp_path, kind, suffix, shape):
    path = write_image_variant(tmp_path / f"car{suffix}", kind, 40, 60)
    _, mask_png, *_ = segment(client, path)
    assert load_mask(mask_png).shape == shape


def _bad_request(tmp_path, case):
    if case == "not-an-image":
        return write_not_an_image(tmp_path / "notes.jpg"), None, "notes.jpg: not a readable image"
    if case == "empty":
        return write_empty(tmp_path / "empty.jpg"), None, r"empty.jpg: the file is empty \(0 bytes\)"
    if case == "truncated":
        return write_truncated_jpeg(tmp_path / "cut.jpg"), None, "cut.jpg: the image data is corrupt or truncated"
    if case == "too-many-pixels":
        path = write_png_header_only(tmp_path / "bomb.png", 30_000, 30_000)
        return path, None, "bomb.png: the image is (30000x30000|over the limit of)"
    if case == "over-limit":
        path = write_png_header_only(tmp_path / "big.png", 1000, 1000)
        return path, None, "big.png: the image is 1000x1000 = 1,000,000 pixels, over the limit of 200,000"
    if case == "mask-size":
        mask = write_mask(tmp_path / "gt.png", box_mask(30, 60), "png255")
        return write_jpeg(tmp_path / "car.jpg", 40, 60), mask, r"'gt.png' is 60x30 \(width x height\) but the image"
    raise ValueError(case)


@pytest.mark.parametrize("case", ["not-an-image", "empty", "truncated", "too-many-pixels", "over-limit", "mask-size"])
def test_bad_input_gives_specific_error_and_server_keeps_serving(client, tmp_path, case):
    image, mask, message = _bad_request(tmp_path, case)
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        segment(client, image, mask)
    _, mask_png, *_ = segment(client, write_jpeg(tmp_path / "good.jpg", 30, 50))
    assert load_mask(mask_png).shape == (30, 50)


def test_concurrent_requests_agree(client, tmp_path):
    image = write_jpeg(tmp_path / "car.jpg", 48, 64, seed=7)
    expected = segment(client, image)[2]
    with ThreadPoolExecutor(max_workers=4) as pool:
        rles = list(pool.map(lambda _: segment(client, image)[2], range(8)))
    assert rles == [expected] * 8


def test_plain_launch_refuses_uploads_over_the_limit(client, tmp_path):
    # The fixture launches `build_demo(...).launch()` without max_file_size: the limit must come from build_demo.
    import httpx

    from carseg_hf.demo.app import MAX_UPLOAD_SIZE

    assert MAX_UPLOAD_SIZE == "50mb"
    upload = f"{client.src.rstrip('/')}/gradio_api/upload"
    too_big = httpx.post(upload, files={"files": ("big.jpg", b"\0" * (50 * 1024 * 1024 + 1))}, timeout=120)
    assert too_big.status_code == 413
    small = httpx.post(upload, files={"files": ("small.jpg", write_jpeg(tmp_path / "s.jpg").read_bytes())})
    assert small.status_code == 200


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def _wait_until(condition, timeout=15.0):
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.1)
    return condition()


def test_temporary_files_are_pruned_on_a_timer_and_at_close(tmp_path, monkeypatch):
    import tempfile

    from carseg_hf.demo.app import build_demo

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the demo makes its scratch folder
    model_dir = save_tiny_model(tmp_path / "model")
    demo = build_demo(str(model_dir), device="cpu", examples_dir=tmp_path / "none", delete_cache=(1, 2))
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        segment(client, write_jpeg(tmp_path / "car.jpg"))
        (scratch,) = tmp_path.glob("carseg-demo-*")
        (request,) = list(scratch.iterdir())  # the request's output folder
        # gr.File leaves an empty tmp* file in Gradio's cache folder for each upload; make it look a minute old.
        leftovers = [p for p in (tmp_path / "gradio").glob("tmp*") if p.stat().st_size == 0]
        assert leftovers
        for path in leftovers:
            _age(path, 120)
        # No further request arrives: the timer alone must remove the output folder (over 2 s old) and the leftovers.
        assert _wait_until(lambda: not request.exists() and not any(p.exists() for p in leftovers))
        segment(client, write_jpeg(tmp_path / "car2.jpg"))
        assert any(scratch.iterdir())
    finally:
        demo.close()
    assert not scratch.exists()  # everything goes at close


def test_sigterm_deletes_the_output_folders(tmp_path):
    import signal
    import subprocess
    import sys

    model_dir = save_tiny_model(tmp_path / "model")
    port = free_port()
    code = (
        "from carseg_hf.demo.app import build_demo\n"
        f"build_demo({str(model_dir)!r}, device='cpu', examples_dir={str(tmp_path / 'none')!r})"
        f".launch(server_name='127.0.0.1', server_port={port}, quiet=True)\n"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    server = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        assert _wait_until(lambda: _answers(port), timeout=120), "the demo did not start"
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        segment(client, write_jpeg(tmp_path / "car.jpg"))
        assert [p.name[:12] for p in temp.iterdir()] == ["carseg-demo-"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()
    assert list(temp.iterdir()) == []


def _answers(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
