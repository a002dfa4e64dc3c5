"""Randomised surroundings without meshes or GL: textures, scene parameters, camera roll, shadows, reflections, photo.

The rule under test throughout: whatever the surroundings do, pixels of the car mask are never changed, and nothing
outside the receiving floor is darkened or mirrored.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.synthetic.camera import camera_pose, look_at
from training.synthetic.params import VARIATION, sample_car_params, sample_image_params, sample_view_params
from training.synthetic.photo import (
    ViewLayers,
    add_reflection,
    cast_shadow,
    compose,
    convex_hull,
    develop,
    finish_photo,
    ground_shadow,
)
from training.synthetic.textures import backdrop_texture, floor_texture, profile_length, turntable_texture

PLAIN = {name: 0.0 for name in VARIATION}
ALWAYS = {name: 1.0 for name in VARIATION}


def test_plain_variation_is_the_clean_studio():
    for seed in range(20):
        car = sample_car_params(np.random.default_rng(seed), PLAIN)
        scene = car["scene"]
        assert scene["setting"] == "studio" and scene["geometry"] == {"radius": 13.0, "cove": 2.5}
        assert scene["wall"] is scene["floor"] is scene["turntable"] is scene["reflection"] is None
        assert scene["cast_shadows"] == [] and car["camera"]["roll_deg"] == 0.0
        view = sample_view_params(np.random.default_rng(seed), car, PLAIN)
        assert view["image"]["exposure_stops"] == 0.0 and view["image"]["blur"]["kind"] == "none"
        assert 80 <= view["jpeg_quality"] < 98


def test_full_variation_draws_everything_and_keeps_the_camera_in_the_studio():
    settings, kinds = set(), set()
    for seed in range(40):
        car = sample_car_params(np.random.default_rng(seed), ALWAYS)
        json.dumps(car)  # goes into metadata.jsonl as is
        scene = car["scene"]
        settings.add(scene["setting"])
        assert scene["wall"] and scene["floor"] and scene["turntable"] and scene["reflection"]
        assert 1 <= len(scene["cast_shadows"]) <= 3
        if scene["setting"] == "studio":
            floor_end = scene["geometry"]["radius"] - scene["geometry"]["cove"]
            assert 1.03 * car["camera"]["distance"] <= floor_end - 1.49
        image = sample_image_params(np.random.default_rng(seed), ALWAYS)
        kinds.add(image["blur"]["kind"])
        assert 45 <= image["jpeg_quality"] < 98 and -1.2 <= image["exposure_stops"] <= 1.0
    assert settings == {"photo"} and kinds == {"none", "gaussian", "motion"}


def test_textures_are_reproducible_and_sized_in_metres():
    scene = sample_car_params(np.random.default_rng(3), ALWAYS)["scene"]
    floor = floor_texture(scene["floor"], 8.0, 128, seed=1)
    assert floor.size == (128, 128) and floor.mode == "RGB"
    assert np.array_equal(np.asarray(floor), np.asarray(floor_texture(scene["floor"], 8.0, 128, seed=1)))
    assert not np.array_equal(np.asarray(floor), np.asarray(floor_texture(scene["floor"], 8.0, 128, seed=2)))
    assert turntable_texture(scene["turntable"], 3.3, 96, seed=1).size == (96, 96)
    wall = backdrop_texture(scene["wall"], width_m=20.0, cove_m=1.0, height_m=6.0, pixels_per_metre=10, seed=4)
    assert wall.size == (200, 60)


def test_profile_length_runs_up_the_cove_then_the_wall():
    assert profile_length(0.0, 2.0) == 0.0
    assert profile_length(2.0, 2.0) == pytest.approx(np.pi)  # a quarter circle of radius 2
    assert profile_length(3.0, 2.0) == pytest.approx(np.pi + 1.0)
    assert profile_length(1.0, 0.0) == pytest.approx(1.0)


def test_camera_roll_turns_about_the_viewing_axis():
    camera = {"distance": 7.0, "height": 1.35, "target": [0.0, 0.0, 0.6]}
    level = camera_pose(camera)
    assert np.allclose(level, look_at(np.array([0.0, -7.0, 1.35]), np.array([0.0, 0.0, 0.6])))
    rolled = camera_pose({**camera, "roll_deg": 10.0})
    assert np.allclose(rolled[:3, 3], level[:3, 3]) and np.allclose(rolled[:3, 2], level[:3, 2])  # same eye, axis
    assert np.degrees(np.arccos(np.clip(rolled[:3, 1] @ level[:3, 1], -1, 1))) == pytest.approx(10.0)


def test_convex_hull_and_ground_shadow():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]])
    hull = convex_hull(square)
    assert len(hull) == 4 and {tuple(p) for p in hull} == {(0, 0), (1, 0), (1, 1), (0, 1)}
    box = np.array([[x, y, z] for x in (-2, 2) for y in (-1, 1) for z in (0.0, 1.4)])
    below = ground_shadow(box, azimuth_deg=0.0, elevation_deg=90.0)
    assert np.allclose(np.sort(below[:, 0]), [-2, -2, 2, 2]) and np.allclose(below[:, 2], 0.0)
    # Light from +x (azimuth 90) at 45 degrees: the shadow stretches 1.4 m toward -x.
    slanted = ground_shadow(box, azimuth_deg=90.0, elevation_deg=45.0)
    assert slanted[:, 0].min() == pytest.approx(-3.4) and slanted[:, 0].max() == pytest.approx(2.0)


def _layers(height: int = 60, width: int = 90) -> tuple[ViewLayers, np.ndarray, np.ndarray]:
    """A grey floor in the bottom half, a car block in the middle, and a camera looking at it."""
    rgb = np.full((height, width, 3), 200, dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[20:45, 30:60] = 1
    rgb[mask == 1] = (180, 20, 20)
    floor = np.zeros((height, width), dtype=bool)
    floor[30:] = True
    floor &= mask == 0
    reflection = np.full((height, width, 3), 10, dtype=np.uint8)
    reflection_mask = np.zeros((height, width), dtype=bool)
    reflection_mask[40:, 25:65] = True
    layers = ViewLayers(rgb, mask, floor, reflection, reflection_mask)
    pose = camera_pose({"distance": 7.0, "height": 1.35, "target": [0.0, 0.0, 0.6]})
    car_points = np.array([[x, y, z] for x in (-2.2, 2.2) for y in (-0.9, 0.9) for z in (0.03, 1.4)])
    return layers, pose, car_points


def test_shadows_and_reflections_touch_only_the_floor_outside_the_mask():
    layers, pose, points = _layers()
    rgb = layers.rgb.astype(np.float32)
    outline = ground_shadow(points, azimuth_deg=30.0, elevation_deg=40.0, ground_z=0.03)
    shaded = cast_shadow(rgb, layers.floor, outline, pose, np.deg2rad(28.0), darkness=0.6, blur_px=2.0)
    changed = np.abs(shaded - rgb).max(axis=2) > 0
    assert changed.any() and not (changed & ~layers.floor).any()
    assert (shaded <= rgb).all()  # a shadow only darkens
    mirrored = add_reflection(rgb, layers.reflection, layers.reflection_mask, layers.floor, strength=0.4, blur_px=3)
    changed = np.abs(mirrored - rgb).max(axis=2) > 1e-3
    assert changed.any() and not (changed & ~layers.floor).any()


@pytest.mark.parametrize("setting", ["studio", "photo"])
def test_compose_never_changes_car_pixels(setting):
    layers, pose, points = _layers()
    style = sample_car_params(np.random.default_rng(1), ALWAYS)["scene"] | {"setting": setting}
    background = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
    out = compose(layers, style, points, pose, np.deg2rad(28.0), background, ground_z=0.03)
    car = layers.mask == 1
    assert np.array_equal(out[car], layers.rgb[car].astype(np.float32))
    if setting == "photo":
        far = ~car & (np.arange(60)[:, None] < 10)  # the sky: no shadow reaches it
        assert np.array_equal(out[far], background[far].astype(np.float32))
        with pytest.raises(ValueError, match="needs a \\(60, 90, 3\\) background"):
            compose(layers, style, points, pose, np.deg2rad(28.0), None)


def test_develop_and_finish_photo():
    rgb = np.random.default_rng(0).integers(30, 220, (40, 60, 3)).astype(np.uint8)
    plain = {"noise_sigma": 0.0}
    assert np.abs(develop(rgb, plain) - rgb).max() < 0.01  # no effect asked, none applied
    brighter = develop(rgb, {"exposure_stops": 1.0})
    assert (brighter >= rgb - 0.01).all() and brighter.mean() > rgb.mean() + 20
    warm = develop(rgb, {"white_balance": [1.2, 1.0, 0.8]})
    assert warm[..., 0].mean() > rgb[..., 0].mean() and warm[..., 2].mean() < rgb[..., 2].mean()
    for blur in (
        {"kind": "gaussian", "size": 0.03, "angle_deg": 0.0},
        {"kind": "motion", "size": 0.1, "angle_deg": 15.0},
    ):
        blurred = develop(rgb, {"blur": blur})
        assert blurred.shape == rgb.shape and blurred.std() < rgb.std() and abs(blurred.mean() - rgb.mean()) < 3
    image = finish_photo(rgb, {**plain, "noise_sigma": 2.0}, np.random.default_rng(1))
    assert image.size == (60, 40) and image.mode == "RGB"
