"""Synthetic renderer: pure-Python parts always; a real render where EGL and the TORCS meshes are present."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from carseg_hf.image_io import load_mask
from carseg_hf.rle import rle_decode
from carseg_hf.submission import read_rle_csv
from training.synthetic.ac3d import AC3DParseError, parse_ac3d, surface_triangles
from training.synthetic.camera import look_at, project, rotation_z, turntable_yaw
from training.synthetic.car_xml import CarXMLError, wheel_specs
from training.synthetic.meshes import MeshesNotFoundError, cars_dir
from training.synthetic.params import car_id
from training.synthetic.splits import assign_cars, mesh_splits, parse_split_args

AC3D_SQUARE = """AC3Db
MATERIAL "m" rgb 1 1 1 amb 1 1 1 emis 0 0 0 spec 0 0 0 shi 0 trans 0
OBJECT world
kids 1
OBJECT poly
name "sq"
texture "car.rgb" base
texture "car.rgb" shad
loc 1 0 0
numvert 4
0 0 0 0 1 0
1 0 0 0 1 0
1 0 1 0 1 0
0 0 1 0 1 0
numsurf 2
SURF 0x30
mat 0
refs 4
0 0 0 0 0
3 0 1 0 1
2 1 1 1 1
1 1 0 1 0
SURF 0x14
mat 0
refs 4
0 0 0
3 0 1
1 1 0
2 1 1
kids 0
"""

WHEEL_XML = """<?xml version="1.0"?>
<!DOCTYPE params SYSTEM "params.dtd">
<params name="x" type="template">
 <section name="Front Axle"><attnum name="xpos" unit="m" val="1.3"/></section>
 <section name="Rear Axle"><attnum name="xpos" unit="m" val="-1.2"/></section>
 {wheels}
</params>
"""


def _wheels(skip: str = "") -> str:
    out = []
    for name, y in (
        ("Front Right Wheel", -0.8),
        ("Front Left Wheel", 0.8),
        ("Rear Right Wheel", -0.8),
        ("Rear Left Wheel", 0.8),
    ):
        attrs = [
            f'<attnum name="ypos" unit="m" val="{y}"/>',
            '<attnum name="rim diameter" unit="in" val="16"/>',
            '<attnum name="tire width" unit="mm" val="200"/>',
            '<attnum name="tire height-width ratio" val="0.5"/>',
            '<attnum name="ride height" unit="mm" val="120"/>',
        ]
        out.append(f'<section name="{name}">' + "".join(a for a in attrs if skip not in a or not skip) + "</section>")
    return "\n".join(out)


def test_ac3d_fan_strip_and_y_up_to_z_up():
    (part,) = parse_ac3d(AC3D_SQUARE)
    assert part.name == "sq" and part.texture == "car.rgb"
    assert part.num_triangles == 4  # a quad fan (2) and a 4-vertex strip (2)
    # AC3D (x, y, z) -> (x, -z, y), after the object's loc (+1 in x): the square lies in the plane z=0.
    assert np.allclose(part.positions[:, 2], 0.0)
    assert part.positions[:, 0].min() == pytest.approx(1.0) and part.positions[:, 0].max() == pytest.approx(2.0)
    assert part.positions[:, 1].min() == pytest.approx(-1.0) and part.positions[:, 1].max() == pytest.approx(0.0)
    # The file's normals (0, 1, 0) become +z; and every triangle winds so that its face normal agrees with them.
    assert np.allclose(part.normals, [0, 0, 1])
    tri = part.positions.reshape(-1, 3, 3)
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (face[:, 2] > 0).all()
    assert part.double_sided.tolist() == [True, True, False, False]
    assert np.allclose(part.uvs[:3], [[0, 0], [0, 1], [1, 1]])


def test_surface_triangles_strip_alternates_and_drops_degenerates():
    assert surface_triangles(4, [10, 11, 12, 13]) == [(0, 1, 2), (2, 1, 3)]
    assert surface_triangles(0, [5, 6, 7, 8, 9]) == [(0, 1, 2), (0, 2, 3), (0, 3, 4)]
    assert surface_triangles(4, [1, 1, 2, 3]) == [(2, 1, 3)]
    assert surface_triangles(2, [1, 2, 3]) == []


def test_ac3d_errors_name_the_line():
    with pytest.raises(AC3DParseError, match="not an AC3D file"):
        parse_ac3d("PLY\n", "model.acc")
    broken = AC3D_SQUARE.replace("3 0 1 0 1\n", "9 0 1 0 1\n", 1)
    with pytest.raises(AC3DParseError, match=r"model.acc, line \d+: vertex index 9 out of range"):
        parse_ac3d(broken, "model.acc")


def test_ac3d_kids_sit_in_the_parent_frame_and_get_face_normals():
    nested = (
        "AC3Db\nOBJECT world\nloc 0 1 0\nkids 1\nOBJECT poly\nname tri\nnumvert 3\n0 0 0\n1 0 0\n0 0 -1\n"
        "numsurf 1\nSURF 0x0\nrefs 3\n0 0 0\n1 0 0\n2 0 0\nkids 0\n"
    )
    (part,) = parse_ac3d(nested)  # the parent has no surfaces, so no part of its own
    assert part.name == "tri" and part.texture is None and part.double_sided.tolist() == [False]
    # AC3D (x, y, z) -> (x, -z, y), after the parent's loc (+1 in y, so +1 in z).
    assert np.allclose(part.positions, [[0, 0, 1], [1, 0, 1], [0, 1, 1]])
    assert np.allclose(part.normals, [0, 0, 1])  # no normals in the file: the face normal
    with pytest.raises(AC3DParseError, match=r"line 5: expected OBJECT, got 'SURF'"):
        parse_ac3d(nested.replace("OBJECT poly", "SURF poly"), "model.acc")


def test_frame_cut_is_an_image_hard_case_only_when_the_mask_touches_the_border():
    from training.synthetic.dataset import _image_hard_cases

    inside = np.zeros((8, 8), np.uint8)
    inside[2:6, 2:6] = 1
    assert _image_hard_cases(["wheel_shadows", "frame_cut"], inside) == ["wheel_shadows"]
    touching = inside.copy()
    touching[3:5, 7] = 1
    assert _image_hard_cases(["wheel_shadows"], touching) == ["frame_cut", "wheel_shadows"]


def test_wheel_specs_units_and_missing_values():
    wheels = wheel_specs(WHEEL_XML.format(wheels=_wheels()))
    assert [w.x for w in wheels] == [1.3, 1.3, -1.2, -1.2]
    assert [w.y for w in wheels] == [-0.8, 0.8, -0.8, 0.8]
    assert wheels[0].rim_radius == pytest.approx(8 * 0.0254)
    assert wheels[0].radius == pytest.approx(8 * 0.0254 + 0.2 * 0.5)
    assert wheels[0].width == pytest.approx(0.2) and wheels[0].ride_height == pytest.approx(0.12)
    with pytest.raises(CarXMLError, match="tire width"):
        wheel_specs(WHEEL_XML.format(wheels=_wheels(skip="tire width")), "car.xml")


def test_car_ids_are_deterministic_hex():
    ids = [car_id(0, i) for i in range(50)]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == 50 and ids == [car_id(0, i) for i in range(50)]
    assert car_id(1, 0) != car_id(0, 0)


def test_camera_projection_and_turntable():
    width, height, yfov = 300, 200, np.deg2rad(28)
    pose = look_at(np.array([0.0, -7.0, 1.35]), np.array([0.0, 0.0, 0.6]))
    centre = project(np.array([[0.0, 0.0, 0.6]]), pose, yfov, width, height)[0]
    assert centre[:2] == pytest.approx([150, 100]) and centre[2] == pytest.approx(np.hypot(7.0, 0.75))
    # A point at the top edge of the field of view projects onto row 0.
    direction = np.linalg.inv(pose)[:3, :3]
    cam_point = np.array([0.0, np.tan(yfov / 2), -1.0]) * 5
    world = pose[:3, :3] @ cam_point + pose[:3, 3]
    assert project(world[None], pose, yfov, width, height)[0, 1] == pytest.approx(0.0, abs=1e-9)
    assert direction.shape == (3, 3)
    # Angle 01 turns the car's front (+x) toward the camera (-y); 16 angles step 22.5 degrees.
    front = rotation_z(turntable_yaw(1, 16))[:3, :3] @ np.array([1.0, 0, 0])
    assert front == pytest.approx([0, -1, 0], abs=1e-12)
    assert np.rad2deg(turntable_yaw(2, 16) - turntable_yaw(1, 16)) == pytest.approx(22.5)
    with pytest.raises(ValueError):
        turntable_yaw(17, 16)


def test_size_flag_is_height_by_width(capsys):
    from training.synthetic.cli import build_parser, main

    assert build_parser().parse_args(["--out", "o", "--size", "1280x1918"]).size == (1280, 1918)
    assert build_parser().parse_args(["--out", "o"]).size == (1280, 1918)  # Carvana's frame, height first
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", "o", "--size", "1918"])
    assert exit_info.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_split_by_mesh_never_shares_meshes():
    available = [f"m{i}" for i in range(10)]
    meshes = mesh_splits(available, parse_split_args(["val=m1,m2", "test=m3"]))
    assert meshes == {"train": ["m0", "m4", "m5", "m6", "m7", "m8", "m9"], "val": ["m1", "m2"], "test": ["m3"]}
    cars = assign_cars(20, meshes, seed=3)
    assert len(cars) == 20 and {s for s, _ in cars} == {"train", "val", "test"}
    for split, mesh in cars:
        assert mesh in meshes[split]
    with pytest.raises(ValueError, match="both val and test"):
        mesh_splits(available, {"val": ("m1",), "test": ("m1",)})
    with pytest.raises(ValueError, match="unknown meshes"):
        mesh_splits(available, {"val": ("nope",), "test": ()})
    with pytest.raises(ValueError, match="--split-by-mesh names val twice"):  # would drop m1 into training
        parse_split_args(["val=m1", "val=m2", "test=m3"])
    with pytest.raises(ValueError, match="--split-by-mesh names m1 twice in test"):
        parse_split_args(["test=m1, m2,m1"])


def test_a_held_out_mesh_that_does_not_exist_is_refused_not_trained_on(tmp_path, capsys):
    from training.synthetic.cli import main

    _fake_torcs(tmp_path)  # two bodies on disk (empty files: the flags are checked first)
    argv = ["--out", str(tmp_path / "out"), "--torcs-dir", str(tmp_path), "--cars", "1", "--plain"]
    assert main([*argv, "--split-by-mesh", "val=acura-nsx"]) == 2  # a typo of acura-nsx-sz
    assert "--split-by-mesh names unknown meshes ['acura-nsx']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "out" / "train").mkdir(parents=True)
    (tmp_path / "out" / "train" / "0a1b2c3d4e5f_01.jpg").write_bytes(b"")  # left by an interrupted older run
    assert main(argv) == 2
    assert "holds 1 image(s) that no earlier render lists" in capsys.readouterr().err


def test_missing_meshes_error_says_how_to_get_them(tmp_path):
    with pytest.raises(MeshesNotFoundError, match="fetch_meshes"):
        cars_dir(tmp_path)


def _egl_and_meshes_reason() -> str | None:
    try:
        cars_dir()
    except MeshesNotFoundError:
        return "TORCS meshes absent (run `python -m training.synthetic.fetch_meshes`)"
    return _egl_reason()


def _egl_reason() -> str | None:
    try:
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        from training.synthetic import render  # imports pyrender after the numpy 2 shim

        render.pyrender.OffscreenRenderer(16, 16).delete()
    except Exception as error:  # any failure to create a headless GL context means "no EGL here"
        return f"no headless EGL rendering here ({type(error).__name__}: {error})"
    return None


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    reason = _egl_and_meshes_reason()
    if reason:
        pytest.skip(reason)
    from training.synthetic.cli import main

    out = tmp_path_factory.mktemp("synth")
    # One car, two angles, on the mesh with a wing (thin parts) and the default split: car4-trb1 is a val mesh.
    argv = [
        "--out",
        str(out),
        "--cars",
        "1",
        "--angles",
        "2",
        "--size",
        "128x192",
        "--seed",
        "5",
        "--workers",
        "1",
        "--meshes",
        "car4-trb1",
        "--plain",  # the studio rig: the geometry check below assumes its camera
    ]
    assert main(argv) == 0
    return out


def test_render_layout_names_and_metadata(rendered):
    ident = car_id(5, 0)
    assert sorted(p.name for p in (rendered / "train").iterdir()) == [f"{ident}_01.jpg", f"{ident}_02.jpg"]
    assert sorted(p.name for p in (rendered / "train_masks").iterdir()) == [
        f"{ident}_01_mask.gif",
        f"{ident}_02_mask.gif",
    ]
    records = [json.loads(line) for line in (rendered / "metadata.jsonl").read_text().splitlines()]
    assert [r["img"] for r in records] == [f"{ident}_01.jpg", f"{ident}_02.jpg"]
    for record in records:
        assert record["mesh"] == "car4-trb1" and record["split"] == "val"
        assert record["mesh_license"]["license"] == "Free-Art-License"
        for key in ("paint", "lighting", "camera", "hard_cases", "angle_deg", "jpeg_quality", "background"):
            assert key in record
    assert json.loads((rendered / "splits.json").read_text()) == {ident: "val"}


def test_render_gif_matches_csv_and_geometry(rendered):
    from PIL import Image

    from training.synthetic.camera import camera_pose as camera_pose_of
    from training.synthetic.camera import project, rotation_z, turntable_yaw
    from training.synthetic.meshes import build_car
    from training.synthetic.render import TURNTABLE_HEIGHT

    rles = read_rle_csv(rendered / "train_masks.csv")
    records = {
        json.loads(line)["img"]: json.loads(line) for line in (rendered / "metadata.jsonl").read_text().splitlines()
    }
    car = build_car("car4-trb1")
    for name, rle in rles.items():
        gif = Image.open(rendered / "train_masks" / name.replace(".jpg", "_mask.gif"))
        assert gif.mode == "P"
        mask = load_mask(rendered / "train_masks" / name.replace(".jpg", "_mask.gif"))
        assert mask.shape == (128, 192) and set(np.unique(mask)) <= {0, 1}
        assert np.array_equal(rle_decode(rle, (128, 192)), mask)  # GIF and CSV agree pixel for pixel
        assert 0.05 < mask.mean() < 0.9
        # Geometry: project the car's vertices with the recorded camera; the mask's box must match the projection.
        record = records[name]
        pose = rotation_z(turntable_yaw(record["angle"], 2))
        cam = record["camera"]
        camera_pose = camera_pose_of(cam)

        view_yfov = np.deg2rad(cam["yfov_deg"])

        def box(parts, pose=pose, camera_pose=camera_pose, yfov=view_yfov):
            points = np.concatenate([p.positions for p in parts]) @ pose[:3, :3].T + [0, 0, TURNTABLE_HEIGHT]
            uv = project(points, camera_pose, yfov, 192, 128)
            edges = np.floor([uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()])
            return np.clip(edges, 0, [191, 191, 127, 127])  # the frame_cut hard case runs the car off the frame

        # Sub-pixel parts (the mesh's own 6 cm antenna) may not cover a pixel centre: the mask's box lies inside
        # the box of all parts and matches the box of the bulky parts.
        bulky = [p for p in car.parts if np.sort(np.ptp(p.positions, axis=0))[1] > 0.08]
        rows, cols = np.nonzero(mask)
        mask_box = np.array([cols.min(), cols.max(), rows.min(), rows.max()])
        outer, inner = box(car.parts), box(bulky)
        # An antenna or roof rack (not in `car.parts`) stands above the body: then the top edge is not checked. A
        # frame-cut view is closer, so thin parts do cover pixels there: only the outer box holds.
        sides = [0, 1, 3] if record["props"] else [0, 1, 2, 3]
        inside = np.concatenate([mask_box[[0, 2]] >= outer[[0, 2]] - 1, mask_box[[1, 3]] <= outer[[1, 3]] + 1])
        assert inside[[0, 2, 1, 3]][sides].all(), (mask_box, outer)
        if not record["frame_cut_requested"]:
            assert np.abs(mask_box - inner)[sides].max() <= 1.5, (mask_box, inner)
        # The photo and the mask line up: car pixels differ from the bright background more than background does.
        photo = np.asarray(Image.open(rendered / "train" / name).convert("L"), dtype=np.float32)
        top_band = photo[: max(2, rows.min() - 2)]
        assert abs(photo[mask == 1].mean() - top_band.mean()) > abs(photo[mask == 0].mean() - top_band.mean()) * 0.5


def test_mask_is_exactly_the_car_pixels_of_the_colour_pass():
    """The mask covers every car surface the photo shows, and nothing else (wing plates, underbody, tyres).

    `acura-nsx-sz` from behind (angle 10 of 16) shows a near edge-on rear-wing plate with a one-sided end plate, a
    dark underbody plate along the bottom edge and the tyres: surfaces that a back-face-culled mask pass dropped.
    The car's pixels in the colour pass are found by rendering the same view with and without the car: where the
    depth or the colour changes. They must equal the mask up to a one-pixel anti-aliasing border.
    """
    reason = _egl_and_meshes_reason()
    if reason:
        pytest.skip(reason)
    from scipy.ndimage import binary_dilation

    from training.synthetic.meshes import build_car
    from training.synthetic.params import sample_car_params
    from training.synthetic.render import CarScene, pyrender, render_view

    width, height = 480, 320
    params = sample_car_params(np.random.default_rng(0))
    scene = CarScene(build_car("acura-nsx-sz"), params)
    view = {"camera": {"distance": 6.83, "height": 1.43, "yfov_deg": 27.6, "target": [0.0, 0.0, 0.72]}}
    scene.set_view(10, 16, view, width, height)
    renderer = pyrender.OffscreenRenderer(width, height)
    try:
        rgb, mask = render_view(renderer, scene)
        with_car, car_depth = renderer.render(scene.scene)
        scene.car_node.mesh.is_visible = False
        studio, studio_depth = renderer.render(scene.scene)
        scene.car_node.mesh.is_visible = True
    finally:
        renderer.delete()
    assert np.array_equal(rgb, with_car[:, :, :3])  # the colour pass is deterministic
    mask = mask.astype(bool)  # (height, width)
    # Nearer than the studio behind it (depth 0 means nothing was drawn there).
    car_surface = (car_depth > 0) & ((studio_depth == 0) | (car_depth < studio_depth - 1e-3))
    changed = np.abs(with_car[:, :, :3].astype(np.int16) - studio[:, :, :3].astype(np.int16)).max(axis=2) > 8
    border = np.ones((3, 3), dtype=bool)
    assert 0.1 < mask.mean() < 0.5
    for name, pixels in (("car surface (depth)", car_surface), ("changed colour", changed)):
        missing = pixels & ~binary_dilation(mask, border)
        assert missing.sum() == 0, (
            f"{missing.sum()} {name} pixels are not in the mask, e.g. at {np.argwhere(missing)[:3]}"
        )
    extra = mask & ~binary_dilation(car_surface, border)
    assert extra.sum() == 0, f"{extra.sum()} mask pixels show no car surface, e.g. at {np.argwhere(extra)[:3]}"
    assert (mask ^ car_surface).sum() < 0.01 * mask.sum()  # outside the border the two agree too


def test_cylinder_triangles_wind_outward():
    """Every tyre, rim and antenna triangle winds counter-clockwise seen from outside, agreeing with its normals."""
    from training.synthetic.meshes import cylinder

    positions, normals = cylinder(0.3, 0.2, sections=12)
    triangles = positions.reshape(-1, 3, 3)  # (triangles, corners, xyz)
    face = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])  # (triangles, 3)
    assert (np.einsum("tc,tc->t", face, normals.reshape(-1, 3, 3).mean(axis=1)) > 0).all()


def test_randomised_surroundings_keep_the_exact_mask():
    """A decorated wall, marked floor, reflection and cast shadows change the photo around the car, never the mask.

    The same car and view are rendered in the plain studio and in a busy one: the SEG masks are identical, the floor
    layer is where the studio's floor is, and composing shadows and the reflection leaves every car pixel as rendered.
    """
    reason = _egl_and_meshes_reason()
    if reason:
        pytest.skip(reason)
    from training.synthetic.meshes import build_car
    from training.synthetic.params import VARIATION, sample_car_params, sample_view_params
    from training.synthetic.photo import compose
    from training.synthetic.render import TURNTABLE_HEIGHT, CarScene, pyrender, render_layers

    width, height = 240, 160
    car = build_car("p406")
    plain = sample_car_params(np.random.default_rng(2), {name: 0.0 for name in VARIATION})
    busy = sample_car_params(np.random.default_rng(2), {**{name: 1.0 for name in VARIATION}, "photo_background": 0})
    busy["camera"] = plain["camera"]  # the same camera rig, so that the views match
    view = sample_view_params(np.random.default_rng(0), plain, {})
    renderer = pyrender.OffscreenRenderer(width, height)
    try:
        layers = {}
        for name, params in (("plain", plain), ("busy", busy)):
            scene = CarScene(car, params, texture_scale=0.25)
            pose = scene.set_view(3, 16, view, width, height)
            layers[name] = render_layers(renderer, scene)
    finally:
        renderer.delete()
    assert np.array_equal(layers["plain"].mask, layers["busy"].mask) and 0.05 < layers["busy"].mask.mean() < 0.6
    busy_layers = layers["busy"]
    assert busy_layers.reflection is not None and busy_layers.floor[-1].mean() > 0.5  # the floor fills the bottom row
    assert not (busy_layers.floor & (busy_layers.mask == 1)).any()
    car_pose = scene.car_pose()
    points = car.vertices() @ car_pose[:3, :3].T + car_pose[:3, 3]
    rgb = compose(
        busy_layers, busy["scene"], points, pose, np.deg2rad(view["camera"]["yfov_deg"]), None, TURNTABLE_HEIGHT
    )
    on_car = busy_layers.mask == 1
    assert np.array_equal(rgb[on_car], busy_layers.rgb[on_car].astype(np.float32))
    assert (np.abs(rgb - busy_layers.rgb).max(axis=2) > 2)[~on_car].any()  # the surroundings did change


def _fake_torcs(root, names=("acura-nsx-sz", "p406")):
    """Car folders with empty bodies: enough for the checks of the flags, which run before any mesh is parsed."""
    from training.synthetic.meshes import CARS_SUBDIR

    for name in names:
        (root / CARS_SUBDIR / name).mkdir(parents=True)
        (root / CARS_SUBDIR / name / f"{name}.acc").write_text("")
        (root / CARS_SUBDIR / name / f"{name}.xml").write_text("")
    return root


def _fake_render(out, ids=("aaaa", "bbbb")):
    """The files an earlier render leaves: images, GIF masks and the three index files; returns their paths."""
    (out / "train").mkdir(parents=True)
    (out / "train_masks").mkdir()
    names = [f"{i}_01" for i in ids]
    for name in names:
        (out / "train" / f"{name}.jpg").write_text("x")
        (out / "train_masks" / f"{name}_mask.gif").write_text("x")
    records = [json.dumps({"img": f"{name}.jpg", "mesh": "p406", "split": "train"}) for name in names]
    (out / "metadata.jsonl").write_text("\n".join(records) + "\n")
    (out / "train_masks.csv").write_text("img,rle_mask\n" + "".join(f"{n}.jpg,1 2\n" for n in names))
    (out / "splits.json").write_text(json.dumps(dict.fromkeys(ids, "train")))
    return sorted(p for p in out.rglob("*") if p.is_file())


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_overwrite_replaces_only_the_files_of_the_earlier_render(tmp_path):
    from training.synthetic.render_folder import earlier_render_files

    earlier = _fake_render(tmp_path)
    kept = ["README.md", "train/notes.txt", "train_masks/aaaa_01_mask.png", "train_masks/gone_01_mask.gif"]
    for name in kept:
        (tmp_path / name).write_text("x")
    assert sorted(earlier_render_files(tmp_path)) == earlier
    assert earlier_render_files(tmp_path / "empty") == []


def test_overwrite_refuses_a_folder_with_images_that_no_render_lists(tmp_path):
    from training.synthetic.render_folder import earlier_render_files

    out = tmp_path / "mixed"
    _fake_render(out)
    for name in ("cccc_01.jpg", "aaaah0_01.JPG", "dddd_02.png"):  # a real photo, a composite, another photo
        (out / "train" / name).write_text("x")
    with pytest.raises(ValueError, match=r"holds 3 image\(s\) that no earlier render lists .* e\.g\. aaaah0_01\.JPG"):
        earlier_render_files(out)
    carvana = tmp_path / "carvana"  # Carvana's own layout: photos and a train_masks.csv, no metadata.jsonl
    (carvana / "train").mkdir(parents=True)
    (carvana / "train" / "cccc_01.jpg").write_text("x")
    (carvana / "train_masks.csv").write_text("img,rle_mask\ncccc_01.jpg,1 2\n")
    with pytest.raises(ValueError, match="holds 1 image"):
        earlier_render_files(carvana)
    (carvana / "train" / "cccc_01.jpg").unlink()
    with pytest.raises(ValueError, match="train_masks.csv has no metadata.jsonl beside it"):
        earlier_render_files(carvana)
    (carvana / "metadata.jsonl").write_text('{"file_name": "cccc_01.jpg"}\n')  # another tool's metadata
    with pytest.raises(ValueError, match=r"metadata.jsonl, line 1: not a record of the renderer"):
        earlier_render_files(carvana)


def test_overwrite_checks_everything_before_it_deletes_anything(tmp_path, capsys):
    from training.synthetic.cli import main

    torcs = _fake_torcs(tmp_path / "torcs")
    photos = tmp_path / "photos"
    _fake_render(photos)
    (photos / "train" / "cccc_01.jpg").write_text("x")  # a real photo beside the renders
    before = _files(photos)
    argv = ["--torcs-dir", str(torcs), "--cars", "1", "--plain", "--overwrite"]
    assert main(["--out", str(photos), *argv]) == 2
    assert "e.g. cccc_01.jpg" in capsys.readouterr().err and _files(photos) == before
    renders = tmp_path / "renders"
    _fake_render(renders)
    before = _files(renders)
    for extra, message in (
        (["--meshes", ","], "--meshes ',' names no mesh"),
        (["--meshes", "p406,p406"], "--meshes names p406 twice"),
        (["--split-by-mesh", "val=p406", "val=acura-nsx-sz"], "--split-by-mesh names val twice"),
    ):
        assert main(["--out", str(renders), *argv, *extra]) == 2
        assert message in capsys.readouterr().err and _files(renders) == before
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(renders), *argv, "--seed", "-1"])
    assert exit_info.value.code == 2 and "argument --seed: must be >= 0, got -1" in capsys.readouterr().err
    for option in ("--cars", "--angles", "--workers"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--out", str(renders), *argv, option, "0"])
        assert exit_info.value.code == 2 and f"argument {option}: must be >= 1, got 0" in capsys.readouterr().err
    assert _files(renders) == before


def _stage_render(out, ids):
    """A finished render of the cars `ids` in `out`'s staging folder, as `cli.main` leaves it before `swap_in`."""
    from training.synthetic.dataset import write_index_files
    from training.synthetic.render_folder import start_staging

    staging = start_staging(out)
    records = []
    for car in ids:
        name = f"{car}_01"
        (staging / "train" / f"{name}.jpg").write_text("new")
        (staging / "train_masks" / f"{name}_mask.gif").write_text("new")
        records.append({"img": f"{name}.jpg", "car_id": car, "split": "train", "mesh": "p406", "rle_mask": "1 2"})
    write_index_files(staging, records)
    return staging


def _rendered_files(ids):
    return sorted(
        [f"train/{car}_01.jpg" for car in ids]
        + [f"train_masks/{car}_01_mask.gif" for car in ids]
        + ["metadata.jsonl", "splits.json", "train_masks.csv"]
    )


@pytest.mark.parametrize(
    "blocked", ["train/cccc_01.jpg", "train/dddd_01.jpg", "train_masks/dddd_01_mask.gif", "splits.json"]
)
def test_a_swap_interrupted_at_any_step_leaves_a_folder_that_overwrite_replaces(tmp_path, blocked):
    """A folder in the way of one of the moves stops `swap_in` there, as a crash or Ctrl-C would."""
    import shutil

    from training.synthetic.render_folder import earlier_render_files, swap_in

    out = tmp_path / "out"
    _fake_render(out)
    (out / "splits.json").unlink()  # an earlier render whose splits.json is gone, so that a folder can block it
    earlier = earlier_render_files(out)
    staging = _stage_render(out, ["cccc", "dddd"])
    (out / blocked).mkdir()
    with pytest.raises(IsADirectoryError):
        swap_in(staging, out, earlier)
    shutil.rmtree(staging)  # as `cli.main` does whatever happens
    (out / blocked).rmdir()
    moved = [name for name in _files(out) if "cccc" in name or "dddd" in name]
    assert moved or blocked == "train/cccc_01.jpg"  # the swap stopped part-way
    earlier = earlier_render_files(out)  # a rerun with --overwrite accepts the folder...
    swap_in(_stage_render(out, ["eeee"]), out, earlier)
    assert _files(out) == _rendered_files(["eeee"])  # ...and leaves only its own render


def test_main_rerun_with_overwrite_replaces_a_render_interrupted_while_moving_in(tmp_path, capsys):
    reason = _egl_and_meshes_reason()
    if reason:
        pytest.skip(reason)
    from training.synthetic.cli import main
    from training.synthetic.render_folder import STAGING

    out = tmp_path / "out"
    _fake_render(out)
    argv = ["--out", str(out), "--cars", "1", "--angles", "1", "--size", "16x24", "--meshes", "car4-trb1"]
    blocker = out / "train_masks" / f"{car_id(7, 0)}_01_mask.gif"
    blocker.mkdir()  # in the way of the new mask: the swap stops after the images moved in
    with pytest.raises(IsADirectoryError):
        main([*argv, "--seed", "7", "--plain", "--overwrite"])
    blocker.rmdir()
    assert f"train/{car_id(7, 0)}_01.jpg" in _files(out) and not (out / STAGING).exists()
    assert main([*argv, "--seed", "8", "--plain", "--overwrite"]) == 0
    assert _files(out) == _rendered_files([car_id(8, 0)])


def test_a_broken_mesh_is_a_usage_error_and_leaves_the_earlier_render(tmp_path, capsys):
    """The worker's AC3DParseError comes back as exit 2 with its message; nothing of the failed run is left."""
    reason = _egl_reason()
    if reason:
        pytest.skip(reason)
    from training.synthetic.cli import main
    from training.synthetic.render_folder import STAGING

    torcs = _fake_torcs(tmp_path / "torcs", names=("broken",))
    out = tmp_path / "out"
    _fake_render(out)
    before = _files(out)
    argv = ["--out", str(out), "--torcs-dir", str(torcs), "--cars", "1", "--angles", "1", "--size", "16x24"]
    assert main([*argv, "--plain", "--overwrite"]) == 2
    assert "broken.acc, line 0: unexpected end of file (nothing was written to" in capsys.readouterr().err
    assert _files(out) == before and not (out / STAGING).exists()


def test_a_smaller_rerun_with_overwrite_leaves_only_its_own_renders(rendered, tmp_path, capsys):
    import shutil

    from training.synthetic.cli import main

    out = shutil.copytree(rendered, tmp_path / "synth")  # the module's data set stays as the other tests expect
    argv = ["--out", str(out), "--cars", "1", "--angles", "1", "--size", "64x96", "--seed", "6"]
    assert main([*argv, "--workers", "1", "--meshes", "car4-trb1", "--plain", "--overwrite"]) == 0
    assert "--overwrite: deleted the 7 files of the earlier render" in capsys.readouterr().out  # 2+2+3 index files
    (image,) = (out / "train").glob("*.jpg")
    assert [p.name for p in (out / "train_masks").glob("*.gif")] == [f"{image.stem}_mask.gif"]
    assert [json.loads(line)["img"] for line in (out / "metadata.jsonl").read_text().splitlines()] == [image.name]
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.jsonl",
        "splits.json",
        "train",
        "train_masks",
        "train_masks.csv",
    ]
