"""Random choices for one car and its views: paint, studio, lights, camera jitter, image noise and hard cases.

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
#: Carvana-like studio camera: about 7 m out, 1.35 m high, vertical field of view near 28 degrees.
CAMERA_DISTANCE = 7.0
CAMERA_HEIGHT = 1.35
CAMERA_YFOV_DEG = 28.0


def car_id(seed: int, index: int) -> str:
    """A 12-hex-character car id derived from the seed and the car's index (like Carvana's `0cdf5b5d0ce1`)."""
    return hashlib.sha256(f"carseg-synth:{int(seed)}:{int(index)}".encode()).hexdigest()[:12]


def car_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator for one car: independent of worker count and of the other cars."""
    return np.random.default_rng([int(seed), int(index)])


def _rgb(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.clip(values, 0.0, 1.0)]


def sample_car_params(rng: np.random.Generator) -> dict:
    """Draw the per-car choices: hard cases, paint, materials, studio tint, lights and base camera.

    Returns:
        A dict with keys `hard_cases` (list), `paint` (name, rgb, metallic, roughness, strength), `rims`,
        `background` (rgb tint of the cyclorama), `turntable` (grey level), `lights` (list of directional lights
        with direction and intensity), `ambient`, `shadow` (darkness, wheel darkness), `camera` (distance, height,
        yfov_deg, target_height).
    """
    hard_cases = sorted(name for name, rate in HARD_CASE_RATES.items() if rng.random() < rate)
    tint_base = rng.uniform(0.86, 1.0)
    background = tint_base + rng.normal(0, 0.015, 3)
    if "paint_matches_background" in hard_cases:
        # Paint picked to be close to the cyclorama: white on white, or pale grey on a grey-tinted set.
        paint_name = "background match"
        paint_rgb = background * rng.uniform(0.9, 1.0) + rng.normal(0, 0.01, 3)
    else:
        names = list(PAINTS)
        weights = np.array([PAINTS[n][1] for n in names])
        paint_name = names[rng.choice(len(names), p=weights / weights.sum())]
        paint_rgb = np.array(PAINTS[paint_name][0]) * rng.uniform(0.9, 1.08) + rng.normal(0, 0.015, 3)
    key_azimuth = rng.uniform(-70, 70)
    lights = [
        {
            "name": "key",
            "azimuth_deg": round(float(key_azimuth), 2),
            "elevation_deg": round(float(rng.uniform(35, 80)), 2),
            "intensity": round(float(rng.uniform(2.0, 4.5)), 3),
        },
        {
            "name": "fill",
            "azimuth_deg": round(float(key_azimuth + rng.uniform(120, 240)), 2),
            "elevation_deg": round(float(rng.uniform(15, 50)), 2),
            "intensity": round(float(rng.uniform(0.6, 2.0)), 3),
        },
        {
            "name": "top",
            "azimuth_deg": 0.0,
            "elevation_deg": 90.0,
            "intensity": round(float(rng.uniform(1.0, 3.0)), 3),
        },
    ]
    wheel_shadows = "wheel_shadows" in hard_cases
    return {
        "hard_cases": hard_cases,
        "paint": {
            "name": paint_name,
            "rgb": _rgb(paint_rgb),
            "metallic": round(float(rng.uniform(0.0, 0.25)), 3),
            "roughness": round(float(rng.uniform(0.25, 0.6)), 3),
            "strength": round(float(rng.uniform(0.75, 0.95)), 3),
        },
        "rims": _rgb(np.full(3, rng.choice([0.08, 0.35, 0.6, 0.75])) + rng.normal(0, 0.02, 3)),
        "background": _rgb(background),
        "background_emission": round(float(rng.uniform(0.55, 0.85)), 3),
        "turntable": round(float(rng.uniform(0.35, 0.6)), 3),
        "lights": lights,
        "shadow": {
            "darkness": round(float(rng.uniform(0.35, 0.6)), 3),
            "wheel_darkness": round(float(rng.uniform(0.8, 0.95) if wheel_shadows else 0.0), 3),
            "blur_m": round(float(rng.uniform(0.12, 0.3)), 3),
        },
        "camera": {
            "distance": round(float(CAMERA_DISTANCE * rng.uniform(0.95, 1.05)), 3),
            "height": round(float(CAMERA_HEIGHT * rng.uniform(0.9, 1.1)), 3),
            "yfov_deg": round(float(CAMERA_YFOV_DEG * rng.uniform(0.96, 1.04)), 3),
            "target_height": round(float(rng.uniform(0.55, 0.75)), 3),
        },
    }


def sample_view_params(rng: np.random.Generator, car: dict) -> dict:
    """Draw the per-view jitter: camera, framing, JPEG quality and sensor noise.

    A car with the `frame_cut` hard case gets, on about half its views, a closer camera and a sideways shift so that
    the car runs off the frame.

    Returns:
        A dict with `camera` (distance, height, yfov_deg, target [x, y, z], shift_m), `frame_cut_requested`,
        `jpeg_quality` and `noise_sigma` (in 0-255 units).
    """
    base = car["camera"]
    cut = "frame_cut" in car["hard_cases"] and rng.random() < 0.5
    distance = base["distance"] * rng.uniform(0.98, 1.02)
    shift = 0.0
    if cut:
        distance *= rng.uniform(0.62, 0.8)
        shift = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.2))
    return {
        "camera": {
            "distance": round(float(distance), 4),
            "height": round(float(base["height"] * rng.uniform(0.97, 1.03)), 4),
            "yfov_deg": round(float(base["yfov_deg"] * rng.uniform(0.99, 1.01)), 4),
            "target": [round(shift, 4), 0.0, round(float(base["target_height"] + rng.normal(0, 0.02)), 4)],
        },
        "frame_cut_requested": bool(cut),
        "jpeg_quality": int(rng.integers(80, 98)),
        "noise_sigma": round(float(rng.uniform(0.3, 3.0)), 3),
    }
