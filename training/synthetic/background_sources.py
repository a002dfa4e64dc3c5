"""The allow-list of background files: which photographs and HDRI panoramas the generator may use, and their split.

Each file of `SOURCES` was looked at and is a photograph (no drawings, renders or logos), with its licence from the
package's copyright file. The split is by file and fixed here: held-out files are never used in training.
Finding, fetching and loading the files is `backgrounds`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("outdoor", "indoor", "closeup")
PANORAMA_DIR = "usr/share/blender/datafiles/studiolights/world"
_MATE = "usr/share/backgrounds/mate/nature"
_PLASMA = "usr/share/wallpapers"
_GPL_MATE = "GPL-2+ (debian/copyright)"
_GPL_PLASMA = "GPL-2+ (debian/copyright, Files: *); upstream metadata.json: LGPLv3"
_CC0 = "CC0-1.0 (studiolights/world/license.txt)"


@dataclass(frozen=True)
class BackgroundSource:
    """One allowed background file.

    Attributes:
        name: Unique short name, "<package short name>/<picture>", e.g. "mate/Storm".
        package: The Debian package that ships it.
        path: The file inside the unpacked package.
        kind: "outdoor" (a scene: street, city, landscape), "indoor" (a room or studio) or "closeup" (macro
            photograph of plants, water, objects).
        licence: The licence, and where it is stated.
        copyright: The copyright holders or authors.
        held_out: Whether the file is kept out of training (held-out composites and renders only).
    """

    name: str
    package: str
    path: str
    kind: str
    licence: str
    copyright: str
    held_out: bool = False

    @property
    def panorama(self) -> bool:
        """Whether this is an equirectangular HDRI panorama (EXR) rather than a photograph."""
        return self.path.endswith(".exr")


def _mate(name: str, kind: str, holders: str, held_out: bool = False) -> BackgroundSource:
    return BackgroundSource(
        f"mate/{name}", "mate-backgrounds", f"{_MATE}/{name}.jpg", kind, _GPL_MATE, holders, held_out
    )


def _plasma(name: str, kind: str, author: str, held_out: bool = False) -> BackgroundSource:
    path = f"{_PLASMA}/{name}/contents/images/2560x1600.jpg"
    holders = f"2014 KDE Visual Design Group; photograph by {author}"
    return BackgroundSource(
        f"plasma/{name}", "plasma-workspace-wallpapers", path, kind, _GPL_PLASMA, holders, held_out
    )


def _hdri(name: str, kind: str, held_out: bool = False) -> BackgroundSource:
    holders = "Greg Zaal (HDRI Haven), shipped by Blender"
    return BackgroundSource(
        f"hdri/{name}", "blender-data", f"{PANORAMA_DIR}/{name}.exr", kind, _CC0, holders, held_out
    )


#: Every background the generator may use. 31 files; 7 held out (23%), two of them panoramas.
SOURCES: tuple[BackgroundSource, ...] = (
    _hdri("city", "outdoor"),
    _hdri("courtyard", "outdoor", held_out=True),
    _hdri("forest", "outdoor"),
    _hdri("interior", "indoor"),
    _hdri("night", "outdoor"),
    _hdri("studio", "indoor"),
    _hdri("sunrise", "outdoor"),
    _hdri("sunset", "outdoor", held_out=True),
    _mate("Aqua", "closeup", "2008, Charles Barbin"),
    _mate("Blinds", "closeup", "2008, Lennart Poettering; 2008, Andrea Cimitan"),
    _mate("Dune", "outdoor", "2007, Marco Cogoni; 2008, Hylke Bons"),
    _mate("FreshFlower", "closeup", "2005, Jens Ansorg"),
    _mate("Garden", "closeup", "2008, Charles Barbin"),
    _mate("GreenMeadow", "closeup", "2005, Timothy Schellhase; 2008, Lapo Calamandrei"),
    _mate("LadyBird", "closeup", "2008, Charles Barbin", held_out=True),
    _mate("RainDrops", "closeup", '2008, "blackcombwhistler07"'),
    _mate("Storm", "outdoor", "2008, Sergey Nazarov", held_out=True),
    _mate("TwoWings", "closeup", "2008, Charles Barbin; 2008, Hylke Bons"),
    _mate("Wood", "closeup", "2008, Jean-François Fortin Tam"),
    _mate("YellowFlower", "closeup", "2008, Charles Barbin"),
    _plasma("BytheWater", "outdoor", "Maciej Wiklo"),
    _plasma("ColdRipple", "outdoor", "Risto Saukonpää"),
    _plasma("ColorfulCups", "closeup", "Dmitri Popov", held_out=True),
    _plasma("DarkestHour", "outdoor", "Risto Saukonpää"),
    _plasma("EveningGlow", "outdoor", "Ian Hex", held_out=True),
    _plasma("FallenLeaf", "closeup", "Martin Klapetek"),
    _plasma("Grey", "outdoor", "Sigi Sagi"),
    _plasma("Kite", "outdoor", "Risto Saukonpää"),
    _plasma("OneStandsOut", "closeup", "Risto Saukonpää"),
    _plasma("Path", "outdoor", "Risto Saukonpää", held_out=True),
    _plasma("summer_1am", "outdoor", "Risto Saukonpää"),
)
PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(s.package for s in SOURCES))
