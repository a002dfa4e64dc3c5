"""The allow-list of background files: which photographs and HDRI panoramas the generator may use, and their split.

Each file of `SOURCES` was looked at and is a photograph (no drawings, renders or logos), with its licence from the
package's copyright file. The split is by file and fixed here, three ways: training files; validation files, which
model selection may look at; and held-out files, kept for the final figures. Neither of the last two is used in
training.
Finding, fetching and loading the files is `backgrounds`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("outdoor", "indoor", "closeup")
#: The splits a file can belong to.
SOURCE_SPLITS = ("train", "validation", "held_out")
PANORAMA_DIR = "usr/share/blender/datafiles/studiolights/world"
_MATE = "usr/share/backgrounds/mate/nature"
_PLASMA = "usr/share/wallpapers"
_LOMIRI = "usr/share/backgrounds"
_GPL_MATE = "GPL-2+ (debian/copyright)"
_GPL_PLASMA = "GPL-2+ (debian/copyright, Files: *); upstream metadata.json: LGPLv3"
_CC0 = "CC0-1.0 (studiolights/world/license.txt)"
_GCOMPRIS_BUNDLE = "usr/share/gcompris-qt/rcc/explore_monuments.rcc"
_GCOMPRIS_FOLDER = "gcompris/src/activities/explore_monuments/resource"
_LXQT = "usr/share/lxqt/wallpapers"
_LXQT_LICENCE = "CC-BY-SA-3.0 (usr/share/lxqt/wallpapers/License); debian/copyright, Files: *: LGPL-2.1+"


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
        split: "train"; "validation" (validation composites, for model selection); or "held_out" (held-out
            composites and renders, for the final figures only).
        member: For a photograph packed in a Qt resource bundle (`.rcc`) at `path`, its path inside the bundle;
            `backgrounds` extracts it into the cache. Empty for a plain file.
    """

    name: str
    package: str
    path: str
    kind: str
    licence: str
    copyright: str
    split: str = "train"
    member: str = ""

    def __post_init__(self) -> None:
        if self.split not in SOURCE_SPLITS:
            raise ValueError(f"{self.name}: split must be one of {SOURCE_SPLITS}, got {self.split!r}")

    @property
    def panorama(self) -> bool:
        """Whether this is an equirectangular HDRI panorama (EXR) rather than a photograph."""
        return self.path.endswith(".exr")


def _mate(name: str, kind: str, holders: str, split: str = "train") -> BackgroundSource:
    return BackgroundSource(f"mate/{name}", "mate-backgrounds", f"{_MATE}/{name}.jpg", kind, _GPL_MATE, holders, split)


def _plasma(name: str, kind: str, author: str, split: str = "train") -> BackgroundSource:
    path = f"{_PLASMA}/{name}/contents/images/2560x1600.jpg"
    holders = f"2014 KDE Visual Design Group; photograph by {author}"
    return BackgroundSource(f"plasma/{name}", "plasma-workspace-wallpapers", path, kind, _GPL_PLASMA, holders, split)


def _lomiri(
    file: str, kind: str, holders: str, licence: str, split: str = "train", release: str = "16.04"
) -> BackgroundSource:
    """A photograph of `lomiri-wallpapers-<release>`, licensed per file in its debian/copyright."""
    name = file.split("_by_")[0]
    package = f"lomiri-wallpapers-{release}"
    licence = f"{licence} (debian/copyright, Files: {release}/{file})"
    return BackgroundSource(f"lomiri/{name}", package, f"{_LOMIRI}/{file}", kind, licence, holders, split)


def _hdri(name: str, kind: str, split: str = "train") -> BackgroundSource:
    holders = "Greg Zaal (HDRI Haven), shipped by Blender"
    return BackgroundSource(f"hdri/{name}", "blender-data", f"{PANORAMA_DIR}/{name}.exr", kind, _CC0, holders, split)


def _gcompris(stem: str, author: str, licence: str, split: str = "train") -> BackgroundSource:
    """A photograph (from Wikimedia Commons) of GCompris' monuments activity, licensed per file in its README."""
    licence = f"{licence} (README of {_GCOMPRIS_FOLDER}/ in the bundle)"
    name = f"gcompris/{stem.split('/')[-1]}"
    member = f"{_GCOMPRIS_FOLDER}/{stem}.webp"
    return BackgroundSource(name, "gcompris-qt-data", _GCOMPRIS_BUNDLE, "outdoor", licence, author, split, member)


def _lxqt(file: str, kind: str, author: str, split: str = "train") -> BackgroundSource:
    name = f"lxqt/{file.rsplit('.', 1)[0]}"
    return BackgroundSource(name, "lxqt-themes", f"{_LXQT}/{file}", kind, _LXQT_LICENCE, author, split)


def _tuxpaint(file: str, kind: str, split: str = "train") -> BackgroundSource:
    path = f"usr/share/tuxpaint/templates/{file}"
    licence = "GPL-2+ (debian/copyright, Files: *)"
    holders = "2002-2021 Bill Kendrick (AUTHORS.txt credits him with the templates)"
    return BackgroundSource(f"tuxpaint/{file.rsplit('.', 1)[0]}", "tuxpaint-data", path, kind, licence, holders, split)


#: Every background the generator may use: 101 files; 78 train, 13 validation, 10 held out (two of them panoramas).
SOURCES: tuple[BackgroundSource, ...] = (
    _hdri("city", "outdoor"),
    _hdri("courtyard", "outdoor", split="held_out"),
    _hdri("forest", "outdoor"),
    _hdri("interior", "indoor"),
    _hdri("night", "outdoor"),
    _hdri("studio", "indoor"),
    _hdri("sunrise", "outdoor"),
    _hdri("sunset", "outdoor", split="held_out"),
    _mate("Aqua", "closeup", "2008, Charles Barbin"),
    _mate("Blinds", "closeup", "2008, Lennart Poettering; 2008, Andrea Cimitan"),
    _mate("Dune", "outdoor", "2007, Marco Cogoni; 2008, Hylke Bons"),
    _mate("FreshFlower", "closeup", "2005, Jens Ansorg"),
    _mate("Garden", "closeup", "2008, Charles Barbin"),
    _mate("GreenMeadow", "closeup", "2005, Timothy Schellhase; 2008, Lapo Calamandrei"),
    _mate("LadyBird", "closeup", "2008, Charles Barbin", split="held_out"),
    _mate("RainDrops", "closeup", '2008, "blackcombwhistler07"'),
    _mate("Storm", "outdoor", "2008, Sergey Nazarov", split="held_out"),
    _mate("TwoWings", "closeup", "2008, Charles Barbin; 2008, Hylke Bons"),
    _mate("Wood", "closeup", "2008, Jean-François Fortin Tam"),
    _mate("YellowFlower", "closeup", "2008, Charles Barbin"),
    _plasma("BytheWater", "outdoor", "Maciej Wiklo"),
    _plasma("ColdRipple", "outdoor", "Risto Saukonpää"),
    _plasma("ColorfulCups", "closeup", "Dmitri Popov", split="held_out"),
    _plasma("DarkestHour", "outdoor", "Risto Saukonpää"),
    _plasma("EveningGlow", "outdoor", "Ian Hex", split="held_out"),
    _plasma("FallenLeaf", "closeup", "Martin Klapetek"),
    _plasma("Grey", "outdoor", "Sigi Sagi"),
    _plasma("Kite", "outdoor", "Risto Saukonpää"),
    _plasma("OneStandsOut", "closeup", "Risto Saukonpää"),
    _plasma("Path", "outdoor", "Risto Saukonpää", split="held_out"),
    _plasma("summer_1am", "outdoor", "Risto Saukonpää"),
    _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("Bridge_by_Sander_Klootwijk.jpg", "outdoor", "2018, Sander Klootwijk", "CC-BY-SA-4.0", split="held_out"),
    _lomiri("Dragonfly_by_Bolly.jpg", "closeup", '2018, "Bolly"', "CC-BY-SA-4.0"),
    _lomiri("free_by_Peter_Nerlich.jpg", "indoor", "2018, Peter Nerlich", "CC-BY-SA-4.0"),
    _lomiri("friends_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("greentock_by_Peter_Nerlich.jpg", "closeup", "2018, Peter Nerlich", "CC-BY-SA-4.0", split="held_out"),
    _lomiri("life_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri(
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0", split="held_out"
    ),
    _lomiri("Picture_0B_by_freespace.jpg", "closeup", '2018, Trevor "Freespace"', "CC-BY-4.0"),
    _lomiri("Picture_1A_by_freespace.jpg", "closeup", '2018, Trevor "Freespace"', "CC-BY-4.0"),
    _lomiri("seeding_by_Clements_Engelhardt.jpg", "closeup", "2018, Clemens Engelhardt", "CC0-1.0"),
    _lomiri("sunset_by_Aitzol_Berasategi.jpg", "outdoor", "2018, Aitzol Berasategi", "CC-BY-4.0"),
    _lomiri("Wine_by_Jakkub_Mede.jpg", "indoor", "2018, Jakub Mede", "CC-BY-4.0"),
    _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "closeup", "2021, Lukas Baubkus", "CC-BY-SA-3.0", release="20.04"),
    _gcompris("egypt/bentPyramid", "Neithsabes", "public domain"),
    _gcompris("egypt/greatPyramidOfGiza", "Gary Todd", "CC0-1.0"),
    _gcompris("egypt/meidumPyramid", "Neithsabes", "public domain"),
    _gcompris("egypt/redPyramid", "Chipdawes", "public domain", split="validation"),
    _gcompris("france/arlesAmphitheater", "(WT-fr) OT Arles", "public domain"),
    _gcompris("france/chateaudeChambord", "BjörnT", "public domain", split="validation"),
    _gcompris("france/chateaudeChenonceau", "Alf van Beem", "public domain"),
    _gcompris("france/citedeCarcassonne", "Petitemontagnedujura", "public domain"),
    _gcompris("france/montStMichel", "Ali Sabbagh", "CC0-1.0", split="validation"),
    _gcompris("france/palaisdesPapes", "Tognopop", "CC0-1.0"),
    _gcompris("france/pontduGard", "Mimova", "public domain", split="validation"),
    _gcompris("france/reimsCathedral", "Mattana", "public domain"),
    _gcompris("france/rocamadour", "François Darras", "public domain"),
    _gcompris("germany/brandenburgGate", "Evans1551", "public domain", split="validation"),
    _gcompris("germany/neuschwansteinCastle", "cameralends", "CC0-1.0"),
    _gcompris("germany/schwerinPalace", "Hermann Luyken", "CC0-1.0"),
    _gcompris("germany/trierImperialBaths", "Berthold Werner", "public domain"),
    _gcompris("germany/wormsCathedral", "Immanuel Giel", "public domain"),
    _gcompris("india/ajantaCave", "Jonathanawhite", "public domain"),
    _gcompris("india/charminar", "Goutamkhandelwal", "public domain"),
    _gcompris("india/gatewayofIndia", "Simon Steinberger", "CC0-1.0", split="validation"),
    _gcompris("india/goldenTemple", "Jasdeep Singh", "CC0-1.0"),
    _gcompris("india/greatStupa", "ArnoldBetten", "public domain"),
    _gcompris("india/hawaMahal", "Janwiki", "public domain"),
    _gcompris("india/konarkSunTemple", "Tetraktys", "public domain"),
    _gcompris("india/mysorePalace", "Shiva sg", "public domain", split="validation"),
    _gcompris("india/qutubMinar", "pramadas", "CC0-1.0"),
    _gcompris("india/rangGhar", "Porikolpok Oxom", "public domain"),
    _gcompris("india/victoriaMemorial", "Anourag", "CC0-1.0"),
    _gcompris("usa/canyondeChelly", "Nikater", "public domain"),
    _gcompris("usa/castillodeSanMarcos", "National Park Service", "public domain"),
    _gcompris("usa/fortSumter", "Gary Todd", "CC0-1.0"),
    _gcompris("usa/georgeWashingtonBirthplace", "National Park Service", "public domain", split="validation"),
    _gcompris("usa/lincolnMemorial", "Brylie Christopher Oxley", "CC0-1.0", split="validation"),
    _gcompris("usa/mountRushmore", "Eekim", "CC0-1.0"),
    _gcompris("usa/navajo", "Jon Sullivan", "public domain"),
    _gcompris("usa/statueofLiberty", "(WT-shared) Ypsilonatshared", "public domain"),
    _gcompris("wonders/chichenItza", "Daniel Schwen", "CC-BY-SA-4.0"),
    _gcompris("wonders/christTheRedeemer", "Chensiyuan", "CC-BY-SA-4.0"),
    _gcompris("wonders/greatWallofChina", "Nicolas Perrault III", "CC0-1.0", split="validation"),
    _gcompris("wonders/machuPicchu", "Guillaume Pascal", "CC0-1.0"),
    _gcompris("wonders/petra", "Berthold Werner", "public domain"),
    _gcompris("wonders/tajMahal", "Yann", "CC-BY-SA-4.0", split="validation"),
    _lxqt("this-is-not-windows.jpg", "outdoor", "2022, stefonarch; LXQt Project Team"),
    _lxqt("fog.jpg", "outdoor", "2022, stefonarch; LXQt Project Team", split="validation"),
    _lxqt("beam.png", "outdoor", "2022, stefonarch; LXQt Project Team"),
    _lxqt("after-the-rain.jpg", "outdoor", "2022, stefonarch; LXQt Project Team"),
    _lxqt("Valendas.png", "outdoor", "2022, LXQt Project Team"),
    _lxqt("flowers.png", "closeup", "2022, stefonarch; LXQt Project Team"),
    _lxqt("appleflower.png", "closeup", "2022, stefonarch; LXQt Project Team"),
    _lxqt("butterfly.png", "closeup", "2022, stefonarch; LXQt Project Team"),
    _lxqt("drop.png", "closeup", "2022, stefonarch; LXQt Project Team"),
    _tuxpaint("cliff.jpg", "outdoor"),
    _tuxpaint("sheep.jpg", "outdoor", split="validation"),
    _tuxpaint("corn_maze.jpg", "outdoor"),
    _tuxpaint("rocks.jpg", "closeup"),
)
PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(s.package for s in SOURCES))
