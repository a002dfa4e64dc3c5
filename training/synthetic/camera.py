"""Camera and turntable math for the studio: poses, the 16 Carvana angles, and pinhole projection.

Frames: world z is up; the camera stands on the -y side looking toward +y. The car stands on the turntable at the
origin and is turned about z; angle 01 shows its front (car +x toward the camera), and each next angle turns the
turntable by `360 / num_angles` degrees (22.5 for 16 angles) counter-clockwise seen from above.
Camera poses follow the OpenGL convention used by pyrender: the camera looks along its -z axis with +y up.
"""

from __future__ import annotations

import numpy as np


def turntable_yaw(angle_number: int, num_angles: int = 16) -> float:
    """The car's yaw in radians for a 1-based Carvana angle number (01 faces the camera).

    Args:
        angle_number: 1..num_angles.
        num_angles: Views per full turn.

    Raises:
        ValueError: If the angle number is out of range.
    """
    if not 1 <= angle_number <= num_angles:
        raise ValueError(f"angle number {angle_number} is outside 1..{num_angles}")
    return float(np.deg2rad(-90.0 + (angle_number - 1) * 360.0 / num_angles))


def rotation_z(yaw: float) -> np.ndarray:
    """A 4x4 homogeneous rotation about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:2, :2] = [[c, -s], [s, c]]
    return pose


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """The camera-to-world pose of a camera at `eye` looking at `target` (OpenGL convention).

    Args:
        eye: `(3,)` camera position.
        target: `(3,)` point it looks at.
        up: `(3,)` world up; must not be parallel to the view direction.

    Returns:
        `(4, 4)` pose whose columns are the camera's x (right), y (up), z (backward) axes and its position.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    backward = eye - target
    backward /= np.linalg.norm(backward)
    right = np.cross(up, backward)
    norm = np.linalg.norm(right)
    if norm < 1e-9:
        raise ValueError("look_at: the up vector is parallel to the viewing direction")
    right /= norm
    true_up = np.cross(backward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, backward, eye
    return pose


def camera_pose(camera: dict) -> np.ndarray:
    """The camera-to-world pose of a view's camera: on the -y side, looking at its target, rolled about its axis.

    Args:
        camera: `distance` (metres in front of the target along -y), `height`, `target` ([x, y, z]) and optionally
            `roll_deg` (a turn of the camera about its viewing axis).

    Returns:
        `(4, 4)` pose (OpenGL convention).
    """
    target = np.asarray(camera["target"], dtype=np.float64)
    pose = look_at(np.array([target[0], -camera["distance"], camera["height"]]), target)
    roll = np.deg2rad(camera.get("roll_deg", 0.0))
    if roll:
        pose = pose @ rotation_z(roll)  # about the camera's own z (viewing) axis
    return pose


def light_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector from the scene toward a distant light (azimuth 0 = from the camera's side, -y; 90 = from +x)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])


def project(points: np.ndarray, camera_pose: np.ndarray, yfov: float, width: int, height: int) -> np.ndarray:
    """Project world points to pixel coordinates of a pinhole camera (pixel centres at `i + 0.5`).

    Args:
        points: `(n, 3)` world points.
        camera_pose: `(4, 4)` camera-to-world pose (OpenGL convention).
        yfov: Vertical field of view in radians.
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        `(n, 3)`: column (x, from the left), row (y, from the top), and depth in front of the camera (metres);
        points behind the camera have depth <= 0.
    """
    points = np.asarray(points, dtype=np.float64)
    world_to_camera = np.linalg.inv(camera_pose)
    cam = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]  # (n, 3) camera frame
    depth = -cam[:, 2]
    focal = (height / 2) / np.tan(yfov / 2)  # pixels; square pixels, so the same for x
    safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
    x = width / 2 + focal * cam[:, 0] / safe
    y = height / 2 - focal * cam[:, 1] / safe
    return np.stack([x, y, depth], axis=1)
