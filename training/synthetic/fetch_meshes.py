"""`python -m training.synthetic.fetch_meshes`: download Debian's torcs-data and unpack it outside the repository.

Runs `apt-get download torcs-data` (about 333 MB) and `dpkg -x` into `$CARSEG_TORCS_DIR`
(default `~/.cache/carseg/torcs`). Needs a Debian or Ubuntu system with those tools.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .debian import fetch_cache_main, fetch_deb
from .meshes import CARS_SUBDIR, MeshesNotFoundError, available_cars, torcs_dir


def fetch(target: Path, package: str = "torcs-data") -> list[str]:
    """Download and unpack the package into `target`; returns the car names found.

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails.
    """
    fetch_deb(package, target, hint="or set CARSEG_TORCS_DIR to an unpacked copy")
    return available_cars(target)


def main(argv: list[str] | None = None) -> int:
    """`python -m training.synthetic.fetch_meshes`: unpack the meshes unless they are there, and list the cars.

    Returns:
        0 on success; 2 for a `--dir` that is a file or lies under one; 1 if apt-get or dpkg is missing or fails
        (`debian.fetch_cache_main`).
    """

    def fetch_or_find(target: Path) -> list[str]:
        if (target / CARS_SUBDIR).is_dir():
            return [f"meshes already present in {target / CARS_SUBDIR}: {', '.join(available_cars(target))}"]
        cars = fetch(target)
        return [f"unpacked {len(cars)} cars into {target / CARS_SUBDIR}: {', '.join(cars)}"]

    return fetch_cache_main(
        argv,
        prog="python -m training.synthetic.fetch_meshes",
        description=__doc__.split("\n")[0],
        options=("--dir",),
        default=torcs_dir(),
        variable="CARSEG_TORCS_DIR",
        fetch=fetch_or_find,
        not_found_error=MeshesNotFoundError,
    )


if __name__ == "__main__":
    sys.exit(main())
