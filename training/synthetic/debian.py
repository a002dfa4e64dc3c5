"""Debian packages as data sources: download and unpack one with `apt-get download` + `dpkg -x`, read its copyright.

Shared by `fetch_meshes` (torcs-data), `backgrounds` (wallpapers and HDRI panoramas) and `distractors` (Tux Paint's
stamps); `fetch_cache_main` is the command line of all three. Nothing here needs root.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from carseg_hf.output_folders import output_folder_problem


def fetch_deb(package: str, target: Path, hint: str = "") -> Path:
    """Download the package with `apt-get download` and unpack it with `dpkg -x` into `target`.

    `dpkg -x` unpacks into a temporary folder beside `target`, which is moved into place only when it has finished:
    a fetch that fails or is interrupted leaves nothing that could pass for an unpacked package.

    Args:
        package: The Debian package name, e.g. "torcs-data".
        target: The folder to unpack into (created if needed); the package's `usr/...` tree lands inside it.
        hint: Appended to the error when apt-get or dpkg is missing (e.g. which variable points at a copy).

    Returns:
        `target`.

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails, or if `target` already holds a top-level folder of the
            package (a partial unpack of an earlier fetch), naming what to delete.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} is not installed; fetch {package} on a Debian/Ubuntu machine and unpack it "
                f"(`dpkg -x`) into {target}{'; ' + hint if hint else ''}"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.fetching-") as tmp:
        result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise RuntimeError(
                f"`apt-get download {package}` failed ({result.returncode}): {result.stderr.strip()}; "
                "run `apt-get update` first if the package is unknown"
            )
        unpacked = Path(tmp) / "unpacked"
        result = subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"`dpkg -x {debs[0].name}` failed: {result.stderr.strip()}")
        _move_into_place(unpacked, target)
    return target


def _move_into_place(unpacked: Path, target: Path) -> None:
    """Rename the finished unpack to `target`; into an existing, non-empty `target`, move its top-level folders.

    Raises:
        RuntimeError: If one of those folders (e.g. `usr`) is already in `target`, naming it to delete.
    """
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        unpacked.rename(target)
        return
    entries = sorted(unpacked.iterdir())
    if clashes := [str(target / entry.name) for entry in entries if (target / entry.name).exists()]:
        raise RuntimeError(
            f"{', '.join(clashes)} already exists, although the package does not count as unpacked there: a partial "
            "unpack, perhaps of an interrupted fetch; delete it and fetch again"
        )
    for entry in entries:
        entry.rename(target / entry.name)


@lru_cache(maxsize=16)
def copyright_stanzas(path: str) -> list[tuple[list[str], str, str]]:
    """Parse a Debian machine-readable copyright file into `(file globs, copyright holders, licence)` stanzas.

    Args:
        path: The `usr/share/doc/<package>/copyright` file.

    Returns:
        One tuple per stanza that has both `Files` and `License`, in file order.
    """
    stanzas = []
    for block in re.split(r"\n\s*\n", Path(path).read_text(encoding="utf-8", errors="replace")):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()]
            elif key is not None:
                fields[key].append(line.strip())
        if "Files" in fields and "License" in fields:
            globs = " ".join(fields["Files"]).split()
            holders = "; ".join(v for v in fields.get("Copyright", []) if v)
            stanzas.append((globs, holders, fields["License"][0]))
    return stanzas


class _StoreFolder(argparse.Action):
    """Store the folder, and which of the option's names gave it (`folder_option`), for the messages."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.folder_option = option_string


def fetch_cache_main(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    options: tuple[str, ...],
    default: Path,
    variable: str,
    fetch: Callable[[Path], list[str]],
    not_found_error: type[Exception],
) -> int:
    """The command line of a fetcher of Debian packages into a cache folder: check the folder, fetch, report.

    Args:
        argv: The arguments (default: `sys.argv[1:]`).
        prog: The program, for the usage line.
        description: The program's description.
        options: The names of the cache folder's option, each accepted, e.g. `("--dir", "--root")`.
        default: The cache folder when the option is not given.
        variable: The environment variable that sets `default`, for the messages.
        fetch: Fetches into the (`~`-expanded) cache folder it is given and returns the lines to print.
        not_found_error: What `fetch` raises for a cache with missing files (a partial unpack).

    Returns:
        0 on success; 2 for a cache folder that is a file or lies under one, or a cache with missing files (the
        message says what to delete); 1 if apt-get or dpkg is missing or fails.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        *options,
        dest="folder",
        type=Path,
        action=_StoreFolder,
        help=f"cache folder (default ${variable}, now {default})",
    )
    args = parser.parse_args(argv)
    given = args.folder is not None
    root = (args.folder if given else default).expanduser()
    if (problem := output_folder_problem(root, args.folder_option if given else variable)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        lines = fetch(root)
    except not_found_error as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if given:
        print(f"set {variable}={root} so that the generators find it")
    return 0
