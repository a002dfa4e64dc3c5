"""Real browser: headless Debian Chromium (through Playwright, no browser download) uploads a photo to the demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from demo_files import box_mask, free_port, save_tiny_model, write_jpeg, write_mask

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    from carseg_hf.demo.app import build_demo

    torch.set_num_threads(1)
    model_dir = save_tiny_model(tmp_path_factory.mktemp("model"))
    examples = tmp_path_factory.mktemp("examples")
    write_jpeg(examples / "0cdf5b5d0ce1_01.jpg", 160, 240, seed=1)
    write_mask(examples / "0cdf5b5d0ce1_01_mask.png", box_mask(160, 240), "png255")
    demo = build_demo(str(model_dir), device="cpu", examples_dir=examples)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_upload_shows_overlay(demo_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    photo = write_jpeg(tmp_path / "car.jpg", 320, 480, seed=2)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(demo_url, wait_until="networkidle")
            assert "segmented at once" in page.locator("#carseg-info").inner_text()  # no "press Segment" first
            assert page.locator(".gallery img, table img, button img").count() >= 1  # an example thumbnail
            page.locator("#carseg-image input[type=file]").set_input_files(str(photo))
            page.locator("#carseg-photo img").first.wait_for(state="visible", timeout=30_000)  # the chosen photo
            overlay = page.locator("#carseg-slider img")
            overlay.first.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(
                "document.querySelector('#carseg-info')?.innerText.includes('network input 96×64')", timeout=30_000
            )
            assert overlay.count() == 2  # before and after
            assert "image 480×320" in page.locator("#carseg-info").inner_text()
            page.screenshot(path=str(ARTIFACTS / "space_browser.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "space_browser.png").stat().st_size > 10_000


def test_a_failed_request_leaves_no_result_of_the_one_before(demo_url, tmp_path):
    from carseg_hf.demo.helpers import NO_RESULT_TEXT

    sync_api = pytest.importorskip("playwright.sync_api")
    photo = write_jpeg(tmp_path / "car.jpg", 320, 480, seed=3)
    broken = tmp_path / "notes.jpg"
    broken.write_bytes(b"not a photo at all")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(demo_url, wait_until="networkidle")
            page.locator("#carseg-image input[type=file]").set_input_files(str(photo))
            page.wait_for_function(
                "document.querySelector('#carseg-info')?.innerText.includes('image 480×320')", timeout=30_000
            )
            assert page.locator("#carseg-slider img").count() == 2
            page.locator("#carseg-mask input[type=file]").set_input_files(str(broken))  # a broken ground truth
            page.get_by_role("button", name="Segment").click()
            page.get_by_text("notes.jpg").first.wait_for(state="visible", timeout=30_000)  # the error names the file
            info = page.locator("#carseg-info").inner_text()
            assert NO_RESULT_TEXT in info and "480×320" not in info  # under Gradio's "Error" badge
            assert page.locator("#carseg-slider img").count() == 0  # the result before the failure is gone
        finally:
            browser.close()
