"""`python -m training.synthetic.fetch_meshes`: download Debian's torcs-data and unpack it outside the repository.

Runs `apt-get download torcs-data` (about 333 MB) and `dpkg -x` into `$CARSEG_TORCS_DIR`
(default `~/.cache/carseg/torcs`). Needs a Debian or Ubuntu system with those tools.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .meshes import CARS_SUBDIR, available_cars, torcs_dir


def fetch(target: Path, package: str = "torcs-data") -> list[str]:
    """Download and unpack the package into `target`; returns the car names found.

    Raises:
        RuntimeError: If apt-get or dpkg is missing or fails.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} is not installed; fetch {package} on a Debian/Ubuntu machine and copy the "
                f"unpacked folder to {target} (or set CARSEG_TORCS_DIR)"
            )
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise RuntimeError(
                f"`apt-get download {package}` failed ({result.returncode}): {result.stderr.strip()}; "
                "run `apt-get update` first if the package is unknown"
            )
        result = subprocess.run(["dpkg", "-x", str(debs[0]), str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"`dpkg -x {debs[0].name}` failed: {result.stderr.strip()}")
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
