"""Writing a Carvana-layout data set: the per-car rendering job (run in worker processes) and the final files.

Layout under the output folder:
    train/<id>_<NN>.jpg                  the renders
    train_masks/<id>_<NN>_mask.gif       palette GIF masks with indices 0 (background) and 1 (car)
    train_masks.csv                      `img,rle_mask` with Kaggle RLE (carseg_hf.rle)
    metadata.jsonl                       one JSON object per image
    splits.json                          {car_id: "train" | "val" | "test"}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from carseg_hf.atomic_files import write_atomic, write_files_atomically
from carseg_hf.overlay import mask_gif_image
from carseg_hf.rle import rle_encode

from .params import car_id, car_rng, sample_car_params, sample_view_params

_RENDERERS: dict[tuple[int, int], object] = {}


def save_image_atomic(image: Image.Image, path: Path, image_format: str, **options) -> None:
    """Save an image beside `path` and rename it into place, so an interrupted run never leaves a truncated file.

    Args:
        image: The image to save.
        path: The file to write.
        image_format: PIL's format name, e.g. "JPEG" or "GIF" (the temporary file's suffix does not tell it).
        **options: PIL's save options for the format, e.g. `quality=90`.
    """
    write_atomic(path, lambda tmp: image.save(tmp, format=image_format, **options))


def _background_sources(job: dict, rng: np.random.Generator) -> list:
    """The photographs a car may stand in front of: held-out files for val/test cars, train files otherwise.

    Mostly scenes (outdoor and indoor), sometimes any photograph (close-ups of plants, water, objects).
    """
    from .backgrounds import KINDS, list_backgrounds

    kinds = ("outdoor", "indoor") if rng.random() < 0.8 else KINDS
    split = "train" if job["split"] == "train" else "held_out"
    return list_backgrounds(split, kinds, job.get("backgrounds_root"), job.get("background_packages"))


def _view_background(source, rng: np.random.Generator, camera: dict, width: int, height: int, job: dict):
    """The photograph behind one view, or None in the studio.

    A panorama is looked at with the render camera's pitch, so that its horizon sits where the car's ground does,
    and a field of view 1-1.6 times the camera's (sharper, and still plausible).
    """
    if source is None:
        return None
    from .backgrounds import background_view

    pitch = float(np.rad2deg(np.arctan2(camera["target"][2] - camera["height"], camera["distance"])))
    yfov = camera["yfov_deg"] * rng.uniform(1.0, 1.6)
    return background_view(source, rng, width, height, pitch, yfov, job.get("backgrounds_root"))


def _renderer(width: int, height: int):
    """The process's offscreen renderer for this size, created on first use (one EGL context per process and size)."""
    import pyrender

    key = (width, height)
    if key not in _RENDERERS:
        _RENDERERS[key] = pyrender.OffscreenRenderer(width, height)
    return _RENDERERS[key]


@dataclass
class _CarSetup:
    """What stays the same across a car's views: its mesh, per-car choices, props and background photograph."""

    identifier: str
    car: object
    params: dict
    extra_parts: list
    prop_info: dict
    background_source: object | None


def _set_up_car(job: dict, rng: np.random.Generator) -> _CarSetup:
    """Build the car and draw its per-car choices, props and background photograph (in this order, from `rng`)."""
    from . import props
    from .meshes import build_car

    car = build_car(job["mesh"], job.get("torcs_root"))
    car_params = sample_car_params(rng, job.get("variation"))
    extra_parts, prop_info = [], {}
    if "antenna" in car_params["hard_cases"]:
        part, prop_info["antenna"] = props.antenna(car, rng)
        extra_parts.append(part)
    if "roof_rack" in car_params["hard_cases"]:
        part, prop_info["roof_rack"] = props.roof_rack(car, rng)
        extra_parts.append(part)
    background_source = None
    if car_params["scene"]["setting"] == "photo":
        sources = _background_sources(job, rng)
        background_source = sources[int(rng.integers(len(sources)))]
    identifier = car_id(job["seed"], job["index"])
    return _CarSetup(identifier, car, car_params, extra_parts, prop_info, background_source)


def _render_view(
    renderer, scene, setup: _CarSetup, points: np.ndarray, job: dict, angle: int, rng: np.random.Generator
) -> tuple:
    """Draw one view's camera and image effects, render it and finish the photo.

    Args:
        renderer: The process's offscreen renderer (see `_renderer`).
        scene: The car's `render.CarScene`.
        setup: The car's per-car choices (see `_set_up_car`).
        points: `(points, 3)` shadow casters in the car's frame.
        job: The job (see `render_car`).
        angle: The view's number, 1 to `job["num_angles"]`.
        rng: The car's generator, after the per-car draws.

    Returns:
        `(photo, mask, view, start)`: the PIL RGB photo, the `(height, width)` 0/1 mask, the view's parameters and
        the `time.perf_counter()` reading taken before rendering.
    """
    from .photo import compose, finish_photo
    from .render import TURNTABLE_HEIGHT, render_layers

    width, height = job["width"], job["height"]
    view = sample_view_params(rng, setup.params, job.get("variation"))
    pose = scene.set_view(angle, job["num_angles"], view, width, height)
    start = time.perf_counter()
    layers = render_layers(renderer, scene)
    background = _view_background(setup.background_source, rng, view["camera"], width, height, job)
    car_pose = scene.car_pose()
    world_points = points @ car_pose[:3, :3].T + car_pose[:3, 3]
    yfov_rad = np.deg2rad(view["camera"]["yfov_deg"])
    style = setup.params["scene"]
    rgb = compose(layers, style, world_points, pose, yfov_rad, background, ground_z=TURNTABLE_HEIGHT)
    photo = finish_photo(rgb, view["image"], rng)
    return photo, layers.mask, view, start


def _image_hard_cases(car_hard_cases: list[str], mask: np.ndarray) -> list[str]:
    """The car's hard cases, with `frame_cut` only when the mask touches the image border in this view."""
    touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    hard_cases = [h for h in car_hard_cases if h != "frame_cut"]
    if touches:
        hard_cases.append("frame_cut")
    return sorted(hard_cases)


def _image_record(job: dict, setup: _CarSetup, angle: int, view: dict, mask: np.ndarray, start: float) -> dict:
    """The metadata record of one image, with an extra `rle_mask` key (removed before writing the JSONL)."""
    car_params = setup.params
    return {
        "img": f"{setup.identifier}_{angle:02d}.jpg",
        "car_id": setup.identifier,
        "angle": angle,
        "angle_deg": round(360.0 * (angle - 1) / job["num_angles"], 3),
        "split": job["split"],
        "mesh": job["mesh"],
        "mesh_license": setup.car.licence,
        "mesh_scale": round(setup.car.scale, 4),
        "width": job["width"],
        "height": job["height"],
        "paint": car_params["paint"],
        "rims": car_params["rims"],
        "background": car_params["background"],
        "lighting": {
            "lights": car_params["lights"],
            "ambient": 0.25,
            "background_emission": car_params["background_emission"],
        },
        "turntable_grey": car_params["turntable"],
        "shadow": car_params["shadow"],
        "scene": car_params["scene"],
        "background_photo": _photo_record(setup.background_source),
        "camera": view["camera"],
        "image": view["image"],
        "jpeg_quality": view["jpeg_quality"],
        "noise_sigma": view["noise_sigma"],
        "hard_cases": _image_hard_cases(car_params["hard_cases"], mask),
        "car_hard_cases": car_params["hard_cases"],
        "frame_cut_requested": view["frame_cut_requested"],
        "props": setup.prop_info,
        "mask_fraction": round(float(mask.mean()), 5),
        "render_seconds": round(time.perf_counter() - start, 4),
        "rle_mask": rle_encode(mask),
    }


def render_car(job: dict) -> list[dict]:
    """Render all angles of one car and write its JPEGs and GIF masks.

    Runs in a worker process; the renderer (EGL context) is created once per process and size.

    Args:
        job: `index`, `seed`, `split`, `mesh`, `num_angles`, `width`, `height`, `out` (folder), `torcs_root`, and
            optionally `variation` (randomisation probabilities, default `params.VARIATION`) and
            `backgrounds_root` (the background cache, default `backgrounds.backgrounds_dir()`) and
            `background_packages` (the packages whose photographs to use, default all).

    Returns:
        One metadata record per image, each with an extra `rle_mask` key (removed before writing the JSONL).
    """
    from .render import CarScene

    width = job["width"]
    renderer = _renderer(width, job["height"])
    rng = car_rng(job["seed"], job["index"])
    setup = _set_up_car(job, rng)
    texture_scale = float(np.clip(width / 1280, 0.25, 1.5))
    scene = CarScene(setup.car, setup.params, setup.extra_parts, texture_scale=texture_scale)
    points = np.concatenate([setup.car.vertices(), *(p.positions for p in setup.extra_parts)])[::7]  # car frame
    out = Path(job["out"])
    records = []
    for angle in range(1, job["num_angles"] + 1):
        photo, mask, view, start = _render_view(renderer, scene, setup, points, job, angle, rng)
        name = f"{setup.identifier}_{angle:02d}"
        save_image_atomic(photo, out / "train" / f"{name}.jpg", "JPEG", quality=view["jpeg_quality"])
        save_image_atomic(mask_gif_image(mask), out / "train_masks" / f"{name}_mask.gif", "GIF", optimize=False)
        records.append(_image_record(job, setup, angle, view, mask, start))
    return records


def _photo_record(source) -> dict | None:
    """The background photograph's name, file and licence for the metadata (None in the studio)."""
    if source is None:
        return None
    return {"name": source.name, "package": source.package, "path": source.path, "license": source.licence}


def write_index_files(out: Path, records: list[dict]) -> None:
    """Write `train_masks.csv`, `splits.json` and `metadata.jsonl`, sorted by image name, together and atomically.

    The files are renamed into place one right after another once all are written (`write_files_atomically`),
    `metadata.jsonl` last.
    """
    records = sorted(records, key=lambda r: r["img"])
    csv_text = "img,rle_mask\n" + "".join(f"{record['img']},{record['rle_mask']}\n" for record in records)
    metadata_text = "".join(json.dumps({k: v for k, v in r.items() if k != "rle_mask"}) + "\n" for r in records)
    splits = {r["car_id"]: r["split"] for r in records}
    splits_text = json.dumps(dict(sorted(splits.items())), indent=1) + "\n"
    texts = {"train_masks.csv": csv_text, "splits.json": splits_text, "metadata.jsonl": metadata_text}
    write_files_atomically(
        {
            out / name: (lambda tmp, text=text: tmp.write_text(text, encoding="utf-8", newline=""))
            for name, text in texts.items()
        }
    )
