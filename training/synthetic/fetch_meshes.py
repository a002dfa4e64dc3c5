"""`python -m training.synthetic.fetch_meshes`: download Debian's torcs-data and unpack it outside the repository.

Runs `apt-get download torcs-data` (about 333 MB) and `dpkg -x` into `$CARSEG_TORCS_DIR`
(default `~/.cache/carseg/torcs`). Needs a Debian or Ubuntu system with those tools.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .debian import fetch_deb
from .meshes import CARS_SUBDIR, available_cars, torcs_dir


def fetch(target: Path, package: str = "torcs-data") -> list[str]:
    """Download and unpack the package into `target`; returns the car names found.

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails.
    """
    fetch_deb(package, target, hint="or set CARSEG_TORCS_DIR to an unpacked copy")
    return available_cars(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic.fetch_meshes", description=__doc__)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to unpack (default $CARSEG_TORCS_DIR or ~/.cache/carseg/torcs)"
    )
    args = parser.parse_args(argv)
    target = (args.dir or torcs_dir()).expanduser()
    if (target / CARS_SUBDIR).is_dir():
        print(f"meshes already present in {target / CARS_SUBDIR}: {', '.join(available_cars(target))}")
        return 0
    try:
        cars = fetch(target)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"unpacked {len(cars)} cars into {target / CARS_SUBDIR}: {', '.join(cars)}")
    if args.dir is not None:
        print(f"set CARSEG_TORCS_DIR={target} so that the generator finds them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
