"""Synthetic Carvana-like studio renders with exact masks, from the TORCS car meshes.

Run `python -m training.synthetic --help`. Rendering needs pyrender, trimesh, PyOpenGL and Mesa's EGL (see
docs/synthetic-data.md); the parsers and the camera math import without them.
"""
