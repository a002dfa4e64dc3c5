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

from .camera import camera_pose, light_direction, look_at, rotation_z, turntable_yaw  # noqa: E402
from .meshes import CarModel, MeshPart  # noqa: E402
from .photo import ViewLayers  # noqa: E402
from .studio import (  # noqa: E402
    CYCLORAMA_COVE,
    CYCLORAMA_HEIGHT,
    CYCLORAMA_RADIUS,
    TURNTABLE_HEIGHT,
    TURNTABLE_RADIUS,
    WALL_SECTOR_DEG,
    cyclorama,
    repaint,
    shadow_texture,
    turntable,
)
from .textures import backdrop_texture, floor_texture, turntable_texture  # noqa: E402

#: Segmentation colour of car pixels in the SEG pass; studio nodes are drawn in black so that they still occlude.
CAR_SEG_VALUE = 255
#: Floor and turntable in the SEG pass: they receive shadows and reflections.
FLOOR_SEG_VALUE = 128
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
    source = light_direction(azimuth_deg, elevation_deg)
    up = np.array([0.0, 1.0, 0.0]) if abs(source[2]) > 0.99 else np.array([0.0, 0.0, 1.0])
    return look_at(source * 10.0, np.zeros(3), up)


#: The mirror in the turntable's top: world z -> 2 h - z.
_MIRROR = np.diag([1.0, 1.0, -1.0, 1.0])
_MIRROR[2, 3] = 2 * TURNTABLE_HEIGHT
#: Texture resolution for 1280-pixel-wide frames: the wall's in pixels per metre, the floor's and the turntable's
#: as the side of their square textures (`CarScene(texture_scale=...)` scales all three).
WALL_PIXELS_PER_METRE = 60.0
FLOOR_TEXTURE_PX = 2048
TABLE_TEXTURE_PX = 1024


def _textured_material(image: Image.Image, emission: float, roughness: float) -> pyrender.MetallicRoughnessMaterial:
    """An opaque material showing `image`, also as emission (studio surfaces glow a little under the lights)."""
    texture = np.asarray(image.convert("RGB"))
    return pyrender.MetallicRoughnessMaterial(
        baseColorTexture=pyrender.Texture(source=texture, source_channels="RGB"),
        emissiveTexture=pyrender.Texture(source=texture, source_channels="RGB"),
        emissiveFactor=np.full(3, emission),
        metallicFactor=0.0,
        roughnessFactor=roughness,
    )


class CarScene:
    """A pyrender scene holding the studio and one car; `set_view` places the camera, `render_layers` draws it.

    The studio follows `car_params["scene"]` (`params.sample_scene_params`): a plain or decorated wall, a plain or
    marked floor and turntable, the wall's distance and cove, and in the "photo" setting no studio at all (the
    photograph is put in afterwards). Without a `scene` key it is the plain studio.

    Args:
        car: The assembled car.
        car_params: The per-car choices from `params.sample_car_params`.
        props: Extra car parts (antenna, roof rack), part of the mask.
        texture_scale: Resolution of the studio's textures relative to `WALL_PIXELS_PER_METRE`, `FLOOR_TEXTURE_PX`
            and `TABLE_TEXTURE_PX` (made for 1280-pixel-wide frames; smaller frames need less).
    """

    def __init__(
        self, car: CarModel, car_params: dict, props: list[MeshPart] = (), texture_scale: float = 1.0
    ) -> None:
        self.car = car
        self.params = car_params
        self.texture_scale = texture_scale
        self.style = car_params.get("scene") or {}
        background = np.asarray(car_params["background"])
        self.scene = pyrender.Scene(bg_color=np.append(background, 1.0), ambient_light=np.full(3, 0.25))
        self.wall_nodes, self.floor_nodes = self._add_studio(background)
        self.table_node = self.floor_nodes[-1]

        parts = list(car.parts) + list(props)
        self.car_node = self.scene.add(pyrender.Mesh(self._car_primitives(parts)))
        # The SEG pass always culls back faces (pyrender ignores `doubleSided` and `SKIP_CULL_FACES` there), while the
        # colour pass draws every car material double-sided. The mask therefore uses its own copy of the car with
        # each triangle in both windings, so that it covers exactly what the colour pass can show.
        self.mask_node = self.scene.add(pyrender.Mesh([two_sided_primitive(parts)]))
        self.mask_node.mesh.is_visible = False
        self.reflective = bool(self.style.get("reflection")) and not self.photo_setting
        self.light_nodes = [
            self.scene.add(
                pyrender.DirectionalLight(color=np.ones(3), intensity=light["intensity"]),
                pose=_direction_pose(light["azimuth_deg"], light["elevation_deg"]),
            )
            for light in car_params["lights"]
        ]
        self.camera_node = None
        # The colour car is not in the map, so the SEG pass skips it and draws the two-sided mask copy instead.
        self.seg_map = {
            self.mask_node: CAR_SEG_VALUE,
            **{n: FLOOR_SEG_VALUE for n in self.floor_nodes},
            **{n: _STUDIO_SEG_VALUE for n in self.wall_nodes},
        }
        self.studio_nodes = self.wall_nodes + self.floor_nodes

    @property
    def photo_setting(self) -> bool:
        """Whether the studio is left out, for a photograph behind the car."""
        return self.style.get("setting", "studio") == "photo"

    def _add_studio(self, background: np.ndarray) -> tuple[list[pyrender.Node], list[pyrender.Node]]:
        """Add the wall, the floor and the turntable; returns `(wall nodes, floor nodes)`, the turntable last."""
        geometry = self.style.get("geometry") or {"radius": CYCLORAMA_RADIUS, "cove": CYCLORAMA_COVE}
        radius, cove = geometry["radius"], geometry["cove"]
        (floor_pos, floor_nrm, floor_uv), (wall_pos, wall_nrm, wall_uv) = cyclorama(radius, cove)
        seed = int(self.style.get("texture_seed", 0))
        plain = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=np.append(background, 1.0),
            emissiveFactor=background * self.params["background_emission"],
            metallicFactor=0.0,
            roughnessFactor=1.0,
        )
        wall_material = floor_material = plain
        shown = not self.photo_setting  # hidden surfaces need no textures
        if shown and self.style.get("wall"):
            width_m = radius * np.deg2rad(WALL_SECTOR_DEG)
            height_m = cove * np.pi / 2 + CYCLORAMA_HEIGHT - cove
            ppm = WALL_PIXELS_PER_METRE * self.texture_scale
            image = backdrop_texture(self.style["wall"], width_m, cove, height_m, ppm, seed)
            wall_material = _textured_material(image, self.params["background_emission"], 1.0)
        if shown and self.style.get("floor"):
            pixels = int(FLOOR_TEXTURE_PX * self.texture_scale)
            image = floor_texture(self.style["floor"], 2 * (radius - cove), pixels, seed + 1)
            floor_material = _textured_material(image, 0.15, 0.8)
        wall = self.scene.add(pyrender.Mesh([_primitive(wall_pos, wall_nrm, wall_material, wall_uv)]))
        floor = self.scene.add(pyrender.Mesh([_primitive(floor_pos, floor_nrm, floor_material, floor_uv)]))

        table_pos, table_nrm, table_uv = turntable()
        base, size = None, 512
        if shown and self.style.get("turntable"):
            size = max(256, int(TABLE_TEXTURE_PX * self.texture_scale))
            base = turntable_texture(self.style["turntable"], TURNTABLE_RADIUS, size, seed + 2)
        table_texture = shadow_texture(self.car, self.params["turntable"], self.params["shadow"], size, base)
        table_material = _textured_material(table_texture, 0.15, 0.9)
        table = self.scene.add(pyrender.Mesh([_primitive(table_pos, table_nrm, table_material, table_uv)]))
        if self.photo_setting:
            for node in (wall, floor, table):
                node.mesh.is_visible = False
        return [wall], [floor, table]

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
            view: Per-view parameters (`camera`: distance, height, yfov_deg, target, optional roll_deg).
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
        pose = camera_pose(cam)
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
    """Render the current view: the colour image and the exact car mask (see `render_layers`).

    Returns:
        `(rgb, mask)`: `(height, width, 3)` uint8 and `(height, width)` uint8 of 0/1.
    """
    layers = render_layers(renderer, scene, reflection=False)
    return layers.rgb, layers.mask


def render_layers(renderer: pyrender.OffscreenRenderer, scene: CarScene, reflection: bool = True) -> ViewLayers:
    """Render the current view: colour, the exact car mask, the floor pixels and, if asked, the floor reflection.

    The mask comes from a separate SEG pass. pyrender culls back faces in SEG passes whatever the materials'
    `doubleSided` flag or `RenderFlags.SKIP_CULL_FACES` say, so that pass draws `scene.mask_node`, a copy of the car
    with every triangle in both windings, in place of the colour car (whose materials are all double-sided). Studio
    nodes are drawn too, so that they still hide what they cover: the wall in black, floor and turntable in grey.
    The reflection pass draws only the car mirrored in the turntable's top, lit by mirrored lights.
    """
    color, _ = renderer.render(scene.scene)
    scene.mask_node.mesh.is_visible = True
    try:
        seg, _ = renderer.render(scene.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=scene.seg_map)
    finally:
        scene.mask_node.mesh.is_visible = False
    mask = (seg[:, :, 0] > (CAR_SEG_VALUE + FLOOR_SEG_VALUE) // 2).astype(np.uint8)  # (height, width)
    floor = (seg[:, :, 0] > FLOOR_SEG_VALUE // 2) & (mask == 0)
    layers = ViewLayers(np.ascontiguousarray(color[:, :, :3]), mask, floor)
    if reflection and scene.reflective:
        layers.reflection, layers.reflection_mask = _render_reflection(renderer, scene)
    return layers


def _render_reflection(renderer: pyrender.OffscreenRenderer, scene: CarScene) -> tuple[np.ndarray, np.ndarray]:
    """The car mirrored in the turntable's top, alone and lit by mirrored lights: `(rgb, where drawn)`."""
    studio = [n for n in scene.studio_nodes if n.mesh.is_visible]
    car_pose = scene.scene.get_pose(scene.car_node)
    light_poses = [scene.scene.get_pose(n) for n in scene.light_nodes]
    for node in studio:
        node.mesh.is_visible = False
    scene.scene.set_pose(scene.car_node, _MIRROR @ car_pose)
    for node, pose in zip(scene.light_nodes, light_poses):
        scene.scene.set_pose(node, _MIRROR @ pose)
    try:
        color, depth = renderer.render(scene.scene)
    finally:
        for node in studio:
            node.mesh.is_visible = True
        scene.scene.set_pose(scene.car_node, car_pose)
        for node, pose in zip(scene.light_nodes, light_poses):
            scene.scene.set_pose(node, pose)
    return np.ascontiguousarray(color[:, :, :3]), depth > 0
