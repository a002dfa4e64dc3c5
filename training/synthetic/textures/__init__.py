"""Procedural studio textures: backdrops with lettering, logos, panels, lights and glass; floors with marks.

Everything is drawn in metres on the surface and turned into pixels at the end, so a mark has the same real size at
any texture resolution. Each function takes the style chosen in `params.sample_scene_params` (JSON-serialisable
counts and colours) and a seed for the details (where each stain or letter goes), so a texture is reproducible from
the metadata. These surfaces are never car: the SEG pass draws them as background whatever they show.

One module per kind of surface: `surface` (the drawing surface and its grain), `floor` (floors and the turntable)
and `backdrop` (the wall behind the car).
"""

from __future__ import annotations

from .backdrop import WORDS, backdrop_texture, profile_length
from .floor import floor_texture, turntable_texture
from .surface import Surface, grain

__all__ = ["WORDS", "Surface", "backdrop_texture", "floor_texture", "grain", "profile_length", "turntable_texture"]
