"""Rendering one car on the turntable from every angle: a colour pass, and an exact mask from a separate SEG pass.

pyrender runs headless over EGL (Mesa llvmpipe on a CPU). Import this module only in the processes that render:
it sets `PYOPENGL_PLATFORM=egl` unless the variable is already set, and patches `np.infty` for pyrender 0.1.45 on
numpy 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402

if not hasattr(np, "infty"):  # pyrender 0.1.45 still uses np.infty, removed in numpy 2
    np.infty = np.inf

import pyrender  # noqa: E402
from PIL import Image  # noqa: E402

from .camera import look_at, rotation_z, turntable_yaw  # noqa: E402
from .meshes import CarModel, MeshPart  # noqa: E402
from .studio import TURNTABLE_HEIGHT, cyclorama, repaint, shadow_texture, turntable  # noqa: E402

#: Segmentation colour of car pixels in the SEG pass; studio nodes are drawn in black so that they still occlude.
CAR_SEG_VALUE = 255
_STUDIO_SEG_VALUE = 0


def _primitive(
    positions: np.ndarray, normals: np.ndarray, material: pyrender.Material, uvs: np.ndarray | None = None
) -> pyrender.Primitive:
    return pyrender.Primitive(positions=positions, normals=normals, texcoord_0=uvs, material=material)


def two_sided_primitive(parts: list[MeshPart]) -> pyrender.Primitive:
    """One untextured primitive holding every triangle of the parts twice, once in each winding.

    Drawn with back-face culling on (as in pyrender's SEG pass), it covers every pixel that the parts cover when
    drawn double-sided.
    """
    positions = np.concatenate([part.positions for part in parts]).reshape(-1, 3, 3)  # (triangles, corners, xyz)
    normals = np.concatenate([part.normals for part in parts]).reshape(-1, 3, 3)
    both_positions = np.concatenate([positions, positions[:, ::-1]]).reshape(-1, 3)  # (2 * triangles * 3, 3)
    both_normals = np.concatenate([normals, -normals[:, ::-1]]).reshape(-1, 3)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], doubleSided=True)
    return _primitive(both_positions.astype(np.float32), both_normals.astype(np.float32), material)


def _direction_pose(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Pose of a directional light shining from the given direction (azimuth 0 = from the camera side)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    source = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
    up = np.array([0.0, 1.0, 0.0]) if abs(source[2]) > 0.99 else np.array([0.0, 0.0, 1.0])
    return look_at(source * 10.0, np.zeros(3), up)


class CarScene:
    """A pyrender scene holding the studio and one car; `render(view)` draws one angle and its mask.

    Args:
        car: The assembled car.
        car_params: The per-car choices from `params.sample_car_params`.
        props: Extra car parts (antenna, roof rack), part of the mask.
    """

    def __init__(self, car: CarModel, car_params: dict, props: list[MeshPart] = ()) -> None:
        self.car = car
        self.params = car_params
        background = np.asarray(car_params["background"])
        self.scene = pyrender.Scene(bg_color=np.append(background, 1.0), ambient_light=np.full(3, 0.25))

        wall_pos, wall_nrm = cyclorama()
        wall_material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=np.append(background, 1.0),
            emissiveFactor=background * car_params["background_emission"],
            metallicFactor=0.0,
            roughnessFactor=1.0,
        )
        self.studio_nodes = [self.scene.add(pyrender.Mesh([_primitive(wall_pos, wall_nrm, wall_material)]))]

        table_pos, table_nrm, table_uv = turntable()
        table_texture = shadow_texture(car, car_params["turntable"], car_params["shadow"])
        table_material = pyrender.MetallicRoughnessMaterial(
            baseColorTexture=pyrender.Texture(source=np.asarray(table_texture), source_channels="RGB"),
            metallicFactor=0.0,
            roughnessFactor=0.9,
            emissiveFactor=np.full(3, 0.15),
            emissiveTexture=pyrender.Texture(source=np.asarray(table_texture), source_channels="RGB"),
        )
        self.table_node = self.scene.add(pyrender.Mesh([_primitive(table_pos, table_nrm, table_material, table_uv)]))
        self.studio_nodes.append(self.table_node)

        parts = list(car.parts) + list(props)
        self.car_node = self.scene.add(pyrender.Mesh(self._car_primitives(parts)))
        # The SEG pass always culls back faces (pyrender ignores `doubleSided` and `SKIP_CULL_FACES` there), while the
        # colour pass draws every car material double-sided. The mask therefore uses its own copy of the car with
        # each triangle in both windings, so that it covers exactly what the colour pass can show.
        self.mask_node = self.scene.add(pyrender.Mesh([two_sided_primitive(parts)]))
        self.mask_node.mesh.is_visible = False
        for light in car_params["lights"]:
            self.scene.add(
                pyrender.DirectionalLight(color=np.ones(3), intensity=light["intensity"]),
                pose=_direction_pose(light["azimuth_deg"], light["elevation_deg"]),
            )
        self.camera_node = None
        # The colour car is not in the map, so the SEG pass skips it and draws the two-sided mask copy instead.
        self.seg_map = {self.mask_node: CAR_SEG_VALUE, **{n: _STUDIO_SEG_VALUE for n in self.studio_nodes}}

    def _car_primitives(self, parts: list[MeshPart]) -> list[pyrender.Primitive]:
        paint = self.params["paint"]
        materials: dict[str, pyrender.Material] = {}

        def textured(name: str, paintable: bool) -> pyrender.Material:
            key = f"{name}:{paintable}"
            if key not in materials:
                image = self.car.texture_image(name)
                if paintable:
                    image = repaint(image, paint)
                materials[key] = pyrender.MetallicRoughnessMaterial(
                    baseColorTexture=pyrender.Texture(source=np.asarray(image), source_channels="RGB"),
                    metallicFactor=paint["metallic"] if paintable else 0.0,
                    roughnessFactor=paint["roughness"] if paintable else 0.6,
                    doubleSided=True,
                )
            return materials[key]

        plain = {
            "tyre": pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[0.035, 0.035, 0.04, 1.0], metallicFactor=0.0, roughnessFactor=0.85, doubleSided=True
            ),
            "rim": pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[*self.params["rims"], 1.0], metallicFactor=0.3, roughnessFactor=0.35, doubleSided=True
            ),
            "prop": pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[0.05, 0.05, 0.055, 1.0], metallicFactor=0.2, roughnessFactor=0.5, doubleSided=True
            ),
            "body": pyrender.MetallicRoughnessMaterial(
                baseColorFactor=[*self.params["paint"]["rgb"], 1.0],
                metallicFactor=0.0,
                roughnessFactor=0.5,
                doubleSided=True,
            ),
        }
        primitives = []
        for part in parts:
            if part.texture is not None and part.uvs is not None:
                material = textured(part.texture, part.paintable)
                primitives.append(_primitive(part.positions, part.normals, material, part.uvs))
            else:
                primitives.append(_primitive(part.positions, part.normals, plain[part.kind]))
        return primitives

    def set_view(self, angle_number: int, num_angles: int, view: dict, width: int, height: int) -> np.ndarray:
        """Turn the turntable to the angle and place the camera; returns the camera pose (4x4).

        Args:
            angle_number: 1-based Carvana angle.
            num_angles: Views per turn.
            view: Per-view parameters (`camera`: distance, height, yfov_deg, target).
            width: Frame width in pixels.
            height: Frame height in pixels.
        """
        yaw_pose = rotation_z(turntable_yaw(angle_number, num_angles))
        car_pose = yaw_pose.copy()
        car_pose[2, 3] = TURNTABLE_HEIGHT
        self.scene.set_pose(self.car_node, car_pose)
        self.scene.set_pose(self.mask_node, car_pose)
        self.scene.set_pose(self.table_node, yaw_pose)
        cam = view["camera"]
        target = np.asarray(cam["target"], dtype=np.float64)
        eye = np.array([target[0], -cam["distance"], cam["height"]])
        pose = look_at(eye, target)
        camera = pyrender.PerspectiveCamera(
            yfov=np.deg2rad(cam["yfov_deg"]), aspectRatio=width / height, znear=0.1, zfar=60.0
        )
        if self.camera_node is not None:
            self.scene.remove_node(self.camera_node)
        self.camera_node = self.scene.add(camera, pose=pose)
        return pose

    def car_pose(self) -> np.ndarray:
        """The car's current pose in the world (4x4)."""
        return self.scene.get_pose(self.car_node)


def render_view(renderer: pyrender.OffscreenRenderer, scene: CarScene) -> tuple[np.ndarray, np.ndarray]:
    """Render the current view: the colour image and the exact car mask.

    The mask comes from a separate SEG pass. pyrender culls back faces in SEG passes whatever the materials'
    `doubleSided` flag or `RenderFlags.SKIP_CULL_FACES` say, so that pass draws `scene.mask_node`, a copy of the car
    with every triangle in both windings, in place of the colour car (whose materials are all double-sided). Studio
    nodes are drawn in black so that they still hide what they cover.

    Returns:
        `(rgb, mask)`: `(height, width, 3)` uint8 and `(height, width)` uint8 of 0/1.
    """
    color, _ = renderer.render(scene.scene)
    scene.mask_node.mesh.is_visible = True
    try:
        seg, _ = renderer.render(scene.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=scene.seg_map)
    finally:
        scene.mask_node.mesh.is_visible = False
    mask = (seg[:, :, 0] > 127).astype(np.uint8)  # (height, width)
    return np.ascontiguousarray(color[:, :, :3]), mask


def finish_photo(rgb: np.ndarray, noise_sigma: float, rng: np.random.Generator) -> Image.Image:
    """Add sensor noise (Gaussian, in 0-255 units) to a render; JPEG compression happens when saving."""
    noisy = rgb.astype(np.float32) + rng.normal(0.0, noise_sigma, rgb.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
