"""Which photo each output of `carseg predict` was made from, so that a rerun never keeps a result of another photo.

Outputs are named after their photo (`x.jpg` gives the mask `x.png` and the submission row `x.jpg`), and a rerun
skips what its outputs already hold. A different photo of the same name (`a/x.jpg` then `b/x.jpg`), or a photo
replaced in place, would then keep the result of the first. So each output keeps a journal of its sources beside
it: one line `{"name": ..., "source": ..., "path": ...}` per output name, where the source identifies the photo's
content (its size, and a sha256 of its first and last 64 KiB: cheap to compute for every input of a rerun) and the
path is where it was read. The same photo copied or moved elsewhere is still done; a rerun whose photo differs from
the recorded one stops with `SourceChangedError`, which names both; `--overwrite` starts the outputs over.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

#: How many mismatches a `SourceChangedError` lists.
MAX_LISTED = 5
#: How many bytes of each end of a photo its fingerprint reads.
_SAMPLED = 64 * 1024


class SourceChangedError(ValueError):
    """Raised when an output holds the result of another photo than this run's photo of the same name."""


def photo_fingerprint(path: str | os.PathLike) -> str:
    """What identifies a photo's content: its size in bytes and a sha256 of its first and last `_SAMPLED` bytes."""
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_SAMPLED))
        if size > 2 * _SAMPLED:
            handle.seek(-_SAMPLED, os.SEEK_END)
        digest.update(handle.read(_SAMPLED))
    return f"{size} bytes, sha256 {digest.hexdigest()[:16]} of its ends"


class SourceJournal:
    """The sources of one output's results (`<output>.carseg-sources.jsonl` or a hidden file in its folder).

    Args:
        path: The journal file.
        what: How messages name the output, e.g. `"the masks folder out"`.
        overwrite: Start the journal over (the output itself starts over).
    """

    def __init__(self, path: str | os.PathLike, what: str, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.what = what
        self.sources: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        if overwrite:
            self.path.unlink(missing_ok=True)
        elif self.path.is_file():
            self._read()

    def _read(self) -> None:
        """Read the recorded sources; a last line cut off by a killed process is removed."""
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
            try:
                entry = json.loads(line)
                self.sources[entry["name"]] = entry["source"]
                self.paths[entry["name"]] = entry.get("path", "?")
            except (ValueError, KeyError, TypeError) as error:
                raise SourceChangedError(
                    f"{self.path}, line {number}: not a carseg sources journal ({error}); delete it or pass "
                    "--overwrite"
                ) from error

    def check(self, outputs: Iterable[tuple[str, Path]], fingerprint_of: Callable[[Path], str]) -> None:
        """Refuse outputs whose recorded photo is not this run's.

        Args:
            outputs: `(output name, photo)` of this run's photos.
            fingerprint_of: `photo_fingerprint`, or a memo of it shared by the run's outputs; called only for the
                names this journal records.

        Raises:
            SourceChangedError: Listing up to `MAX_LISTED` names with the recorded photo and this run's.
        """
        changed = []
        for name, photo in outputs:
            if name in self.sources and self.sources[name] != (source := fingerprint_of(photo)):
                changed.append(
                    f"  {name}: made from {self.paths[name]} ({self.sources[name]}); this run has {photo} ({source})"
                )
        if not changed:
            return
        more = f"\n  ... and {len(changed) - MAX_LISTED} more" if len(changed) > MAX_LISTED else ""
        raise SourceChangedError(
            f"{self.what} holds results of other photos of the same names ({len(changed)}):\n"
            + "\n".join(changed[:MAX_LISTED])
            + f"{more}\npass --overwrite to start it over, or write to another output"
        )

    def append(self, outputs: Iterable[tuple[str, Path, str]]) -> None:
        """Record `(output name, photo, its photo_fingerprint)` triples as written; durable before returning."""
        entries = [(name, source, os.path.realpath(photo)) for name, photo, source in outputs]
        entries = [entry for entry in entries if self.sources.get(entry[0]) != entry[1]]
        if not entries:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            lines = (json.dumps({"name": name, "source": source, "path": path}) for name, source, path in entries)
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        self.sources.update((name, source) for name, source, _ in entries)
        self.paths.update((name, path) for name, _, path in entries)
