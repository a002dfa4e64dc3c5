"""Background photographs and panoramas: the allow-list and its split, panorama views, tone mapping, crops.

Nothing here needs the network or the Debian packages: a fake cache of tiny files stands in for them. Only the
licence check reads the real copyright files, and skips when they are not unpacked.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.synthetic.background_sources import SOURCE_SPLITS
from training.synthetic.backgrounds import (
    KINDS,
    SOURCES,
    BackgroundsNotFoundError,
    backgrounds_dir,
    cached_path,
    fetch_backgrounds,
    list_backgrounds,
    load_background,
    random_background,
    random_crop,
)
from training.synthetic.panorama import perspective_view, tone_map


def test_split_is_by_file_three_ways_with_outdoor_photographs_outside_training():
    names = [s.name for s in SOURCES]
    assert len(set(names)) == len(names) and len({(s.package, s.path, s.member) for s in SOURCES}) == len(SOURCES)
    by_split = {split: [s for s in SOURCES if s.split == split] for split in SOURCE_SPLITS}
    assert len(by_split["held_out"]) >= 10 and len(by_split["validation"]) >= 10
    assert len(by_split["train"]) >= 0.7 * len(SOURCES)
    assert sum(s.panorama for s in by_split["held_out"]) >= 2
    for split in (
        "validation",
        "held_out",
    ):  # photographs of outdoor scenes for the validation and held-out composites
        assert sum(s.kind == "outdoor" and not s.panorama for s in by_split[split]) >= 5
    for source in SOURCES:
        assert source.kind in KINDS and source.licence and source.copyright
    with pytest.raises(ValueError, match="split must be one of"):
        dataclasses.replace(SOURCES[0], split="test")


def test_missing_backgrounds_error_says_how_to_get_them(tmp_path):
    with pytest.raises(BackgroundsNotFoundError, match="python -m training.synthetic.backgrounds"):
        list_backgrounds("train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        list_backgrounds("test", root=tmp_path)
    with pytest.raises(ValueError, match="kinds must be among"):
        list_backgrounds("train", kinds=("street",), root=tmp_path)


def test_packed_photographs_are_extracted_from_their_bundle_once(tmp_path):
    from test_qt_resources import write_qt_resources

    packed = [s for s in SOURCES if s.member]
    assert len({s.path for s in packed}) == 1 and len(packed) >= 30
    bundle = tmp_path / packed[0].package / packed[0].path
    bundle.parent.mkdir(parents=True)
    contents = {s.member: f"photo of {s.name}".encode() for s in packed}
    write_qt_resources(bundle, {**contents, "gcompris/other/file.qml": b"not a photo"})
    assert fetch_backgrounds(tmp_path, packages=(packed[0].package,)) == []  # unpacked already: nothing fetched
    assert all(cached_path(s, tmp_path).read_bytes() == contents[s.member] for s in packed)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert not leftovers and not list(tmp_path.rglob("file.qml"))
    cached_path(packed[0], tmp_path).unlink()
    write_qt_resources(bundle, {s.member: b"x" for s in packed[1:]})  # a bundle that lacks a listed photograph
    with pytest.raises(BackgroundsNotFoundError, match=packed[0].member):
        fetch_backgrounds(tmp_path, packages=(packed[0].package,))


def test_backgrounds_can_be_limited_to_some_packages(tmp_path):
    openexr = pytest.importorskip("OpenEXR", reason="openexr (synth extra) reads the panoramas")
    _fake_cache(tmp_path, openexr)
    mate = list_backgrounds("train", root=tmp_path, packages=("mate-backgrounds",))
    assert mate and {s.package for s in mate} == {"mate-backgrounds"}
    assert mate == [s for s in list_backgrounds("train", root=tmp_path) if s.package == "mate-backgrounds"]
    with pytest.raises(ValueError, match="background packages must be among .*; got no-such-package"):
        list_backgrounds("train", root=tmp_path, packages=("mate-backgrounds", "no-such-package"))
    with pytest.raises(ValueError, match="no backgrounds of kinds .* of packages tuxpaint-data"):
        random_background(np.random.default_rng(0), 8, 8, "held_out", root=tmp_path, packages=("tuxpaint-data",))


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CARSEG_BACKGROUNDS_DIR", str(tmp_path))
    assert backgrounds_dir() == tmp_path


def _fake_cache(root, openexr) -> dict[str, tuple[int, int, int]]:
    """Write a tiny solid-colour file for every source; returns each photograph's colour by name."""
    colours = {}
    for index, source in enumerate(SOURCES):
        path = cached_path(source, root)  # a packed photograph as if already extracted from its bundle
        path.parent.mkdir(parents=True, exist_ok=True)
        if source.panorama:
            hdr = np.full((32, 64, 3), 0.5, dtype=np.float32)
            hdr[:16] = 4.0  # a bright sky above the horizon
            header = {"compression": openexr.ZIP_COMPRESSION, "type": openexr.scanlineimage}
            openexr.File(header, {"RGB": hdr}).write(str(path))
        else:
            colours[source.name] = ((index % 16) * 16, (index // 16) * 40, 100)  # distinct for up to 112 files
            Image.new("RGB", (96, 60), colours[source.name]).save(path, quality=100, subsampling=0)
    return colours


def test_random_background_from_a_fake_cache(tmp_path):
    openexr = pytest.importorskip("OpenEXR", reason="openexr (synth extra) reads the panoramas")
    colours = _fake_cache(tmp_path, openexr)
    rng = np.random.default_rng(0)
    split_of = {s.name: s.split for s in SOURCES}
    for split, kinds in (("train", ("closeup",)), ("validation", ("outdoor",))):
        split_colours = {c for name, c in colours.items() if split_of[name] == split}
        for _ in range(30):
            image = random_background(rng, 48, 32, split=split, kinds=kinds, root=tmp_path)
            assert image.shape == (32, 48, 3) and image.dtype == np.uint8
            colour = tuple(int(v) for v in image[16, 24])
            assert min(np.abs(np.subtract(colour, c)).max() for c in split_colours) <= 3  # a photograph of the split
    view = random_background(rng, 40, 30, split="held_out", kinds=("outdoor",), root=tmp_path)
    assert view.shape == (30, 40, 3)
    panorama = next(s for s in SOURCES if s.panorama)
    fixed = np.asarray(load_background(panorama, root=tmp_path, max_side=60))
    assert fixed.shape == (40, 60, 3)
    assert fixed[0].mean() > fixed[-1].mean()  # the sky is brighter than the ground, and above it


def test_perspective_view_looks_where_asked():
    rows, cols = 90, 180  # 2 degrees per pixel
    longitude = np.linspace(-180, 180, cols, endpoint=False) + 1.0  # pixel centres
    latitude = 90 - (np.arange(rows) + 0.5) * 2.0
    panorama = np.stack([*np.meshgrid(longitude, latitude), np.zeros((rows, cols))], axis=-1).astype(np.float32)
    centre = perspective_view(panorama, 9, 9, yaw_deg=0.0, pitch_deg=0.0, yfov_deg=40.0)[4, 4]
    assert np.allclose(centre[:2], [0.0, 0.0], atol=1e-3)
    turned = perspective_view(panorama, 9, 9, yaw_deg=90.0, pitch_deg=20.0, yfov_deg=40.0)[4, 4]
    assert np.allclose(turned[:2], [90.0, 20.0], atol=1e-3)
    view = perspective_view(panorama, 9, 9, yfov_deg=40.0)
    top_row = np.degrees(np.arctan(4 / 4.5 * np.tan(np.radians(20.0))))  # pixel centre half a pixel below the edge
    assert view[0, 4, 1] == pytest.approx(top_row, abs=0.05) and view[4, 8, 0] > 0  # up is up, right is east


def test_tone_map_is_8_bit_monotonic_and_auto_exposed():
    hdr = np.linspace(0.01, 100.0, 300, dtype=np.float32)[:, None].repeat(3, axis=1).reshape(10, 30, 3)
    out = tone_map(hdr)
    assert out.dtype == np.uint8 and (np.diff(out.reshape(-1, 3)[:, 0].astype(int)) >= 0).all()
    assert np.abs(tone_map(hdr * 50.0).astype(int) - out).max() <= 1  # exposure follows the scene's brightness
    assert tone_map(hdr, exposure=2.0).mean() > out.mean()


def test_random_crop_keeps_size_and_content():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, :100] = 255
    rng = np.random.default_rng(3)
    crops = [random_crop(image, rng, 30, 20) for _ in range(10)]
    assert all(c.shape == (20, 30, 3) and c.dtype == np.uint8 for c in crops)
    assert len({round(float(c.mean()), 1) for c in crops}) > 5  # random scale, position and flip
    assert {tuple(c[10, 0]) for c in crops} >= {(0, 0, 0), (255, 255, 255)}  # flips and shifts


def _real_cache_or_skip():
    try:
        list_backgrounds("all")
    except BackgroundsNotFoundError:
        pytest.skip("backgrounds not unpacked (run `python -m training.synthetic.backgrounds`)")
    return backgrounds_dir()


def test_licences_match_the_packages_copyright_files():
    from training.synthetic.debian import copyright_stanzas

    root = _real_cache_or_skip()
    for source in SOURCES:
        package = root / source.package
        if source.panorama:
            assert "CC0" in (package / source.path).with_name("license.txt").read_text()
            continue
        stanzas = copyright_stanzas(str(package / f"usr/share/doc/{source.package}/copyright"))
        if source.package == "mate-backgrounds":
            relative = source.path.split("usr/share/backgrounds/mate/")[1]
            (holders, licence) = next((h, lic) for globs, h, lic in stanzas if relative in globs)
            assert source.licence.startswith(licence)
            assert source.copyright.split(";")[0].split(", ")[1] in holders
        elif source.package.startswith("lomiri-wallpapers-"):
            relative = f"{source.package.rsplit('-', 1)[1]}/{Path(source.path).name}"
            (holders, licence) = next((h, lic) for globs, h, lic in stanzas if relative in globs)
            assert source.licence.startswith(licence) and relative in source.licence
            assert source.copyright.split(", ", 1)[1] in holders
        elif source.package == "gcompris-qt-data":
            _check_gcompris_licence(source, package)
        elif source.package in ("lxqt-themes", "tuxpaint-data"):
            licence = next(lic for globs, _, lic in stanzas if globs == ["*"])
            assert licence in source.licence  # Debian's blanket licence
            if source.package == "lxqt-themes":  # and the wallpapers' own licence file
                upstream = (package / source.path).with_name("License").read_text()
                assert "licenses/by-sa/3.0" in upstream and source.licence.startswith("CC-BY-SA-3.0")
                assert all(holder.split(", ")[-1] in upstream for holder in source.copyright.split("; "))
        else:
            licence = next(lic for globs, _, lic in stanzas if globs == ["*"])
            assert source.licence.startswith(licence)
            name = source.name.split("/")[1]
            meta = json.loads((package / f"usr/share/wallpapers/{name}/metadata.json").read_text())
            assert meta["KPlugin"]["Authors"][0]["Name"] in source.copyright


def _check_gcompris_licence(source, package: Path) -> None:
    """The photograph's stanza in the README inside its bundle names the same author and licence."""
    from training.synthetic.qt_resources import read_qt_resources

    folder, relative = source.member.split("/resource/")
    readme = read_qt_resources(package / source.path)[f"{folder}/resource/README"].decode()
    stanza = next(block for block in readme.split("\n\n") if relative in block.split())
    fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
    assert fields["Copyright"] == source.copyright
    expected = {"Public Domain": "public domain", "CC0-1.0": "CC0-1.0", "CC-BY-SA 4.0": "CC-BY-SA-4.0"}
    assert source.licence.startswith(expected[fields["License"]])


def test_a_partial_unpack_says_which_folder_to_delete_instead_of_fetching_again(tmp_path, monkeypatch, capsys):
    from training.synthetic.backgrounds import PACKAGES, main

    for package in PACKAGES:  # each folder counts as unpacked (it has usr/) but lacks its files
        (tmp_path / package / "usr").mkdir(parents=True)
    assert main(["--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'gcompris-qt-data'} lacks usr/share/gcompris-qt/rcc/explore_monuments.rcc" in error
    assert f"Delete {tmp_path / PACKAGES[0]}, " in error and "Traceback" not in error
    (tmp_path / "afile").write_text("x")
    for folder, message in (("afile", "is a file"), ("afile/sub", f"lies under '{tmp_path / 'afile'}'")):
        assert main(["--dir", str(tmp_path / folder)]) == 2
        assert f"error: --dir '{tmp_path / folder}' {message}" in capsys.readouterr().err
    monkeypatch.setenv("HOME", str(tmp_path))  # `--root`, the name `distractors` uses, works too, and `~` expands
    assert main(["--root", "~/afile"]) == 2
    assert f"error: --root '{tmp_path / 'afile'}' is a file" in capsys.readouterr().err


def _fake_apt_get(tmp_path, monkeypatch) -> Path:
    """Build a small .deb with dpkg-deb and put an `apt-get` on PATH that "downloads" the file `$FAKE_DEB`."""
    import shutil
    import subprocess

    if shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None:
        pytest.skip("dpkg-deb and dpkg (Debian/Ubuntu) build and unpack the test package")
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: fakepkg\nVersion: 1.0\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: test\n"
    )
    for name, content in (("a/first.txt", b"first"), ("z/big.bin", np.random.default_rng(0).bytes(300_000))):
        (tree / "usr/share/fake" / name).parent.mkdir(parents=True)
        (tree / "usr/share/fake" / name).write_bytes(content)
    deb = tmp_path / "fakepkg_1.0_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", str(tree), str(deb)], check=True, capture_output=True)
    apt_get = tmp_path / "bin" / "apt-get"
    apt_get.parent.mkdir()
    apt_get.write_text('#!/bin/sh\ncp "$FAKE_DEB" "./$2_1.0_all.deb"\n')
    apt_get.chmod(0o755)
    monkeypatch.setenv("PATH", f"{apt_get.parent}:{os.environ['PATH']}")
    return deb


def test_fetch_deb_moves_only_a_complete_unpack_into_place(tmp_path, monkeypatch):
    from training.synthetic.debian import fetch_deb

    deb = _fake_apt_get(tmp_path, monkeypatch)
    truncated = tmp_path / "truncated.deb"  # as if the download or the unpack stopped halfway
    truncated.write_bytes(deb.read_bytes()[:150_000])
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_DEB", str(truncated))
    with pytest.raises(RuntimeError, match="dpkg -x"):
        fetch_deb("fakepkg", cache / "fakepkg")
    assert list(cache.iterdir()) == []  # nothing that could pass for the package, and no temporary folder left
    monkeypatch.setenv("FAKE_DEB", str(deb))
    assert fetch_deb("fakepkg", cache / "fakepkg") == cache / "fakepkg"
    assert (cache / "fakepkg/usr/share/fake/a/first.txt").read_bytes() == b"first"
    assert (cache / "fakepkg/usr/share/fake/z/big.bin").stat().st_size == 300_000
    assert list(cache.iterdir()) == [cache / "fakepkg"]
    torcs = tmp_path / "torcs"  # a folder of the user's: the package's usr/ moves in beside what is there
    torcs.mkdir()
    (torcs / "notes.txt").write_text("mine")
    fetch_deb("fakepkg", torcs)
    assert (torcs / "notes.txt").read_text() == "mine" and (torcs / "usr/share/fake/a/first.txt").is_file()
    with pytest.raises(RuntimeError, match=rf"{torcs / 'usr'} already exists, .* partial unpack.* delete it"):
        fetch_deb("fakepkg", torcs)  # an earlier, partial unpack is named, never merged into
