"""Random choices for one car and its views: paint, studio, backdrop, floor, shadows, camera, image and hard cases.

Every draw comes from `numpy.random.default_rng([seed, car_index])`, so a car renders the same whatever the number
of worker processes. Everything returned is JSON-serialisable and goes into `metadata.jsonl` as is.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Named paints with Carvana-like frequencies (white, black, silver and grey dominate real used-car lots).
PAINTS: dict[str, tuple[tuple[float, float, float], float]] = {
    "white": ((0.93, 0.93, 0.92), 0.22),
    "black": ((0.03, 0.03, 0.035), 0.14),
    "silver": ((0.68, 0.69, 0.70), 0.14),
    "grey": ((0.38, 0.39, 0.40), 0.12),
    "red": ((0.62, 0.05, 0.05), 0.09),
    "blue": ((0.06, 0.16, 0.48), 0.09),
    "dark blue": ((0.03, 0.05, 0.18), 0.04),
    "green": ((0.10, 0.30, 0.14), 0.03),
    "beige": ((0.72, 0.64, 0.50), 0.04),
    "yellow": ((0.85, 0.72, 0.10), 0.03),
    "orange": ((0.85, 0.35, 0.06), 0.03),
    "brown": ((0.28, 0.17, 0.10), 0.03),
}
#: Probability that a car gets each hard case.
HARD_CASE_RATES = {
    "antenna": 0.25,
    "roof_rack": 0.2,
    "wheel_shadows": 0.3,
    "paint_matches_background": 0.15,
    "frame_cut": 0.15,
}
#: Probability of each randomisation (per car, except `image_effects`, per view). `--plain` sets all to 0, which gives
#: the clean Carvana-like studio: near-white cyclorama, plain grey turntable, soft contact shadow, fixed camera rig.
VARIATION: dict[str, float] = {
    "decorated_backdrop": 0.75,  # wall colour, panels, large lettering, logos, lights, glass partitions
    "floor_marks": 0.75,  # floor and turntable: seams, stains, tyre marks, scuffs, grain
    "studio_geometry": 0.5,  # distance to the wall and the cove's radius
    "reflection": 0.3,  # a glossy floor mirroring the car
    "cast_shadows": 0.6,  # shadows cast by the lights on the floor, hard or soft, short or long
    "photo_background": 0.3,  # a photograph or panorama instead of the studio
    "camera_pose": 0.5,  # camera height, distance, field of view and roll beyond the studio rig
    "image_effects": 0.7,  # exposure, white balance, blur, stronger noise, lower JPEG quality
}
#: Wall colours of a decorated backdrop, with their probabilities.
WALL_PALETTE = {"white": 0.35, "grey": 0.25, "dark": 0.15, "colour": 0.25}
#: Carvana-like studio camera: about 7 m out, 1.35 m high, vertical field of view near 28 degrees.
CAMERA_DISTANCE = 7.0
CAMERA_HEIGHT = 1.35
CAMERA_YFOV_DEG = 28.0
#: The default studio: the wall 13 m from the turntable's centre, curving up from the floor through a 2.5 m cove.
CYCLORAMA_RADIUS_M = 13.0
CYCLORAMA_COVE_M = 2.5


def car_id(seed: int, index: int) -> str:
    """A 12-hex-character car id derived from the seed and the car's index (like Carvana's `0cdf5b5d0ce1`)."""
    return hashlib.sha256(f"carseg-synth:{int(seed)}:{int(index)}".encode()).hexdigest()[:12]


def car_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator for one car: independent of worker count and of the other cars."""
    return np.random.default_rng([int(seed), int(index)])


def _rgb(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.clip(values, 0.0, 1.0)]


def _chance(rng: np.random.Generator, variation: dict[str, float], name: str) -> bool:
    return bool(rng.random() < variation.get(name, 0.0))


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


def sample_wall_colour(rng: np.random.Generator) -> np.ndarray:
    """A decorated backdrop's base colour: white, grey, dark, or a pale to saturated colour (see `WALL_PALETTE`)."""
    names = list(WALL_PALETTE)
    kind = names[rng.choice(len(names), p=np.array(list(WALL_PALETTE.values())))]
    if kind == "colour":
        hue = rng.uniform(0.0, 1.0, 3)
        return np.clip(hue / max(hue.max(), 1e-3) * rng.uniform(0.35, 0.95) + rng.uniform(0.0, 0.3), 0, 1)
    level = {"white": (0.85, 1.0), "grey": (0.4, 0.8), "dark": (0.04, 0.3)}[kind]
    return np.clip(rng.uniform(*level) + rng.normal(0, 0.015, 3), 0, 1)


def _backdrop_style(rng: np.random.Generator, wall_rgb: np.ndarray) -> dict:
    return {
        "rgb": _rgb(wall_rgb),
        "gradient": _round(rng.uniform(0.0, 0.35)),
        "grain": _round(rng.uniform(0.0, 0.05)),
        "panels": int(rng.random() < 0.4),
        "lettering": int(rng.choice([0, 1, 2, 3, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1])),
        "logos": int(rng.choice([0, 1, 2, 3], p=[0.35, 0.35, 0.2, 0.1])),
        "lights": int(rng.choice([0, 1, 2, 4], p=[0.45, 0.25, 0.2, 0.1])),
        "glass": int(rng.choice([0, 1, 2], p=[0.55, 0.3, 0.15])),
    }


def _marks(rng: np.random.Generator) -> dict:
    return {
        "grain": _round(rng.uniform(0.005, 0.04)),
        "stains": int(rng.integers(0, 9)),
        "tyre_marks": int(rng.integers(0, 5)),
        "scuffs": int(rng.integers(0, 60)),
    }


def sample_scene_params(rng: np.random.Generator, variation: dict[str, float], turntable_grey: float) -> dict:
    """Draw the surroundings of one car: studio or photograph, backdrop, floor, turntable, reflection, cast shadows.

    Args:
        rng: The car's generator.
        variation: Probabilities by name (see `VARIATION`); missing names count as 0.
        turntable_grey: The turntable's grey level, kept for a marked turntable.

    Returns:
        A JSON-serialisable dict: `setting` ("studio" or "photo"), `texture_seed`, `geometry` (wall `radius`,
        `cove`), `wall` (backdrop style, or None for the plain emissive cyclorama), `floor` and `turntable` (mark
        styles, or None for plain grey), `reflection` (`strength`, `blur`, or None) and `cast_shadows` (list of
        `azimuth_deg`, `elevation_deg`, `darkness`, `softness`).
    """
    setting = "photo" if _chance(rng, variation, "photo_background") else "studio"
    geometry = {"radius": CYCLORAMA_RADIUS_M, "cove": CYCLORAMA_COVE_M}
    if _chance(rng, variation, "studio_geometry"):
        geometry = {"radius": _round(rng.uniform(8.0, 13.0)), "cove": _round(rng.uniform(0.05, 3.0))}
    wall = _backdrop_style(rng, sample_wall_colour(rng)) if _chance(rng, variation, "decorated_backdrop") else None
    floor = turntable = None
    if _chance(rng, variation, "floor_marks"):
        floor_grey = rng.uniform(0.2, 0.85)
        floor_rgb = np.clip(floor_grey * (1 + rng.normal(0, 0.04, 3)), 0, 1)
        seams = str(rng.choice(["none", "tiles", "planks"], p=[0.4, 0.4, 0.2]))
        floor = {
            "rgb": _rgb(floor_rgb),
            "seams": seams,
            "seam_spacing_m": _round(rng.uniform(0.4, 1.5)),
            **_marks(rng),
        }
        segments = int(rng.choice([0, 4, 6, 8, 12]))
        turntable = {"grey": _round(turntable_grey), "segments": segments, **_marks(rng)}
    reflection = None
    if _chance(rng, variation, "reflection"):
        reflection = {"strength": _round(rng.uniform(0.08, 0.4)), "blur": _round(rng.uniform(0.0, 0.006), 4)}
    shadows = []
    if _chance(rng, variation, "cast_shadows"):
        for _ in range(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))):
            hard = rng.random() < 0.4
            shadows.append(
                {
                    "azimuth_deg": _round(rng.uniform(-180, 180), 2),
                    "elevation_deg": _round(rng.uniform(20, 85), 2),
                    "darkness": _round(rng.uniform(0.15, 0.6)),
                    "softness": _round(rng.uniform(0.0005, 0.004) if hard else rng.uniform(0.01, 0.05), 4),
                }
            )
    return {
        "setting": setting,
        "texture_seed": int(rng.integers(0, 2**31 - 1)),
        "geometry": geometry,
        "wall": wall,
        "floor": floor,
        "turntable": turntable,
        "reflection": reflection,
        "cast_shadows": shadows,
    }


def _studio_camera(rng: np.random.Generator) -> dict:
    return {
        "distance": _round(CAMERA_DISTANCE * rng.uniform(0.95, 1.05)),
        "height": _round(CAMERA_HEIGHT * rng.uniform(0.9, 1.1)),
        "yfov_deg": _round(CAMERA_YFOV_DEG * rng.uniform(0.96, 1.04)),
        "target_height": _round(rng.uniform(0.55, 0.75)),
        "roll_deg": 0.0,
    }


def _free_camera(rng: np.random.Generator) -> dict:
    """A camera off the studio rig: low or high, wide or long lens, slightly rolled.

    The distance makes a 4.5 m car seen side on fill 45-95% of a 3:2 frame's width.
    """
    yfov = rng.uniform(18.0, 50.0)
    half_width = np.arctan(1.5 * np.tan(np.deg2rad(yfov) / 2))
    distance = 4.5 / (rng.uniform(0.45, 0.95) * 2 * np.tan(half_width))
    return {
        "distance": _round(distance),
        "height": _round(rng.uniform(0.4, 3.0)),
        "yfov_deg": _round(yfov),
        "target_height": _round(rng.uniform(0.4, 0.9)),
        "roll_deg": _round(rng.normal(0.0, 1.5)),
    }


def _sample_paint_colour(
    rng: np.random.Generator, match_background: bool, background: np.ndarray
) -> tuple[str, np.ndarray]:
    """The paint's name and linear RGB: one of `PAINTS` by weight, or close to the wall's colour (a hard case)."""
    if match_background:
        # Paint picked to be close to the wall: white on white, pale grey on a grey-tinted set, red on red.
        paint_rgb = background * rng.uniform(0.9, 1.0) + rng.normal(0, 0.01, 3)
        return "background match", paint_rgb
    names = list(PAINTS)
    weights = np.array([PAINTS[n][1] for n in names])
    paint_name = names[rng.choice(len(names), p=weights / weights.sum())]
    paint_rgb = np.array(PAINTS[paint_name][0]) * rng.uniform(0.9, 1.08) + rng.normal(0, 0.015, 3)
    return paint_name, paint_rgb


def _sample_lights(rng: np.random.Generator) -> list[dict]:
    """The three directional lights: a key light, a fill light opposite it, and a top light."""
    key_azimuth = rng.uniform(-70, 70)
    return [
        {
            "name": "key",
            "azimuth_deg": _round(key_azimuth, 2),
            "elevation_deg": _round(rng.uniform(35, 80), 2),
            "intensity": _round(rng.uniform(2.0, 4.5)),
        },
        {
            "name": "fill",
            "azimuth_deg": _round(key_azimuth + rng.uniform(120, 240), 2),
            "elevation_deg": _round(rng.uniform(15, 50), 2),
            "intensity": _round(rng.uniform(0.6, 2.0)),
        },
        {"name": "top", "azimuth_deg": 0.0, "elevation_deg": 90.0, "intensity": _round(rng.uniform(1.0, 3.0))},
    ]


def sample_car_params(rng: np.random.Generator, variation: dict[str, float] | None = None) -> dict:
    """Draw the per-car choices: hard cases, paint, materials, studio, lights, surroundings and base camera.

    Args:
        rng: The car's generator.
        variation: Probabilities of the randomisations (default `VARIATION`; all 0 gives the plain studio).

    Returns:
        A dict with keys `hard_cases` (list), `paint` (name, rgb, metallic, roughness, strength), `rims`,
        `background` (rgb of the cyclorama), `turntable` (grey level), `lights` (list of directional lights
        with direction and intensity), `ambient`, `shadow` (darkness, wheel darkness), `scene` (see
        `sample_scene_params`), `camera` (distance, height, yfov_deg, target_height, roll_deg).
    """
    variation = VARIATION if variation is None else variation
    hard_cases = sorted(name for name, rate in HARD_CASE_RATES.items() if rng.random() < rate)
    turntable_grey = rng.uniform(0.35, 0.6)
    scene = sample_scene_params(rng, variation, turntable_grey)
    if scene["wall"] is not None:
        background = np.asarray(scene["wall"]["rgb"])
    else:
        background = rng.uniform(0.86, 1.0) + rng.normal(0, 0.015, 3)
    paint_name, paint_rgb = _sample_paint_colour(rng, "paint_matches_background" in hard_cases, background)
    lights = _sample_lights(rng)
    wheel_shadows = "wheel_shadows" in hard_cases
    camera = _free_camera(rng) if _chance(rng, variation, "camera_pose") else _studio_camera(rng)
    if scene["setting"] == "studio":  # the camera stands on the studio's floor, 1.5 m or more before the cove
        geometry = scene["geometry"]
        geometry["radius"] = max(geometry["radius"], _round(1.03 * camera["distance"] + geometry["cove"] + 1.5))
    return {
        "hard_cases": hard_cases,
        "paint": {
            "name": paint_name,
            "rgb": _rgb(paint_rgb),
            "metallic": _round(rng.uniform(0.0, 0.25)),
            "roughness": _round(rng.uniform(0.25, 0.6)),
            "strength": _round(rng.uniform(0.75, 0.95)),
        },
        "rims": _rgb(np.full(3, rng.choice([0.08, 0.35, 0.6, 0.75])) + rng.normal(0, 0.02, 3)),
        "background": _rgb(background),
        "background_emission": _round(rng.uniform(0.55, 0.85)),
        "turntable": _round(turntable_grey),
        "lights": lights,
        "shadow": {
            "darkness": _round(rng.uniform(0.35, 0.6)),
            "wheel_darkness": _round(rng.uniform(0.8, 0.95) if wheel_shadows else 0.0),
            "blur_m": _round(rng.uniform(0.12, 0.3)),
        },
        "scene": scene,
        "camera": camera,
    }


def sample_image_params(rng: np.random.Generator, variation: dict[str, float]) -> dict:
    """Draw one photo's camera processing: exposure, white balance, blur, noise and JPEG quality.

    Without `image_effects` (drawn with its probability) the photo only gets the studio's light sensor noise and a
    high JPEG quality, as before.

    Returns:
        `exposure_stops`, `white_balance` (RGB gains), `blur` (`kind` "none", "gaussian" or "motion", `size` as a
        fraction of the image width, `angle_deg`), `vignette`, `noise_sigma` (0-255 units) and `jpeg_quality`.
    """
    plain = {
        "exposure_stops": 0.0,
        "white_balance": [1.0, 1.0, 1.0],
        "blur": {"kind": "none", "size": 0.0, "angle_deg": 0.0},
        "vignette": 0.0,
        "noise_sigma": _round(rng.uniform(0.3, 3.0)),
        "jpeg_quality": int(rng.integers(80, 98)),
    }
    if not _chance(rng, variation, "image_effects"):
        return plain
    kind = str(rng.choice(["none", "gaussian", "motion"], p=[0.5, 0.35, 0.15]))
    size = {"none": 0.0, "gaussian": rng.uniform(0.0003, 0.0025), "motion": rng.uniform(0.001, 0.006)}[kind]
    return {
        "exposure_stops": _round(np.clip(rng.normal(0.0, 0.4), -1.2, 1.0)),
        "white_balance": [_round(2 ** rng.normal(0, 0.08)), 1.0, _round(2 ** rng.normal(0, 0.1))],
        "blur": {"kind": kind, "size": _round(size, 5), "angle_deg": _round(rng.uniform(-20, 20), 1)},
        "vignette": _round(rng.uniform(0.0, 0.35)),
        "noise_sigma": _round(rng.uniform(0.3, 6.0)),
        "jpeg_quality": int(rng.integers(45, 98)),
    }


def sample_view_params(rng: np.random.Generator, car: dict, variation: dict[str, float] | None = None) -> dict:
    """Draw the per-view jitter: camera, framing and the photo's processing.

    A car with the `frame_cut` hard case gets, on about half its views, a closer camera and a sideways shift so that
    the car runs off the frame.

    Returns:
        A dict with `camera` (distance, height, yfov_deg, target [x, y, z], roll_deg), `frame_cut_requested`,
        `image` (see `sample_image_params`), and its `jpeg_quality` and `noise_sigma` repeated at the top level.
    """
    variation = VARIATION if variation is None else variation
    base = car["camera"]
    cut = "frame_cut" in car["hard_cases"] and rng.random() < 0.5
    distance = base["distance"] * rng.uniform(0.98, 1.02)
    shift = 0.0
    if cut:
        distance *= rng.uniform(0.62, 0.8)
        shift = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.2))
    image = sample_image_params(rng, variation)
    return {
        "camera": {
            "distance": _round(distance, 4),
            "height": _round(base["height"] * rng.uniform(0.97, 1.03), 4),
            "yfov_deg": _round(base["yfov_deg"] * rng.uniform(0.99, 1.01), 4),
            "target": [round(shift, 4), 0.0, _round(base["target_height"] + rng.normal(0, 0.02), 4)],
            "roll_deg": base.get("roll_deg", 0.0),
        },
        "frame_cut_requested": bool(cut),
        "image": image,
        "jpeg_quality": image["jpeg_quality"],
        "noise_sigma": image["noise_sigma"],
    }
