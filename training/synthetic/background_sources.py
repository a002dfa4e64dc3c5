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
_LOMIRI = "usr/share/backgrounds"
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


def _lomiri(
    file: str, kind: str, holders: str, licence: str, held_out: bool = False, release: str = "16.04"
) -> BackgroundSource:
    """A photograph of `lomiri-wallpapers-<release>`, licensed per file in its debian/copyright."""
    name = file.split("_by_")[0]
    package = f"lomiri-wallpapers-{release}"
    licence = f"{licence} (debian/copyright, Files: {release}/{file})"
    return BackgroundSource(f"lomiri/{name}", package, f"{_LOMIRI}/{file}", kind, licence, holders, held_out)


def _hdri(name: str, kind: str, held_out: bool = False) -> BackgroundSource:
    holders = "Greg Zaal (HDRI Haven), shipped by Blender"
    return BackgroundSource(
        f"hdri/{name}", "blender-data", f"{PANORAMA_DIR}/{name}.exr", kind, _CC0, holders, held_out
    )


#: Every background the generator may use. 45 files; 10 held out (22%), two of them panoramas.
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
    _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("Bridge_by_Sander_Klootwijk.jpg", "outdoor", "2018, Sander Klootwijk", "CC-BY-SA-4.0", held_out=True),
    _lomiri("Dragonfly_by_Bolly.jpg", "closeup", '2018, "Bolly"', "CC-BY-SA-4.0"),
    _lomiri("free_by_Peter_Nerlich.jpg", "indoor", "2018, Peter Nerlich", "CC-BY-SA-4.0"),
    _lomiri("friends_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("greentock_by_Peter_Nerlich.jpg", "closeup", "2018, Peter Nerlich", "CC-BY-SA-4.0", held_out=True),
    _lomiri("life_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri(
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0", held_out=True
    ),
    _lomiri("Picture_0B_by_freespace.jpg", "closeup", '2018, Trevor "Freespace"', "CC-BY-4.0"),
    _lomiri("Picture_1A_by_freespace.jpg", "closeup", '2018, Trevor "Freespace"', "CC-BY-4.0"),
    _lomiri("seeding_by_Clements_Engelhardt.jpg", "closeup", "2018, Clemens Engelhardt", "CC0-1.0"),
    _lomiri("sunset_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("Wine_by_Jakkub_Mede.jpg", "indoor", "2018, Jakub Mede", "CC-BY-4.0"),
    _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "closeup", "2021, Lukas Baubkus", "CC-BY-SA-3.0", release="20.04"),
)
PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(s.package for s in SOURCES))
