"""What produced the outputs of `carseg predict`, kept beside them, and the check that a rerun may reuse them.

Every output keeps a record of the settings that produced its results: the model (folder or Hub id, revision, the
sha256 of its weights file and of the weights as run), the image processor's settings, the threshold, the test-time
augmentation, the network's input resolution and the output format.

- A submission `FILE.csv` has its record in `FILE.csv.carseg.json`, written when its journal is started and kept
  beside the finished submission, so that a later run can continue it too.
- A folder of masks or overlays has a journal, `.carseg-masks.jsonl` or `.carseg-overlays.jsonl`: a first line with
  the settings, then the names of the files written with them, appended after every batch. Only files listed there
  count as done; any other file of the same name is recomputed.

A rerun whose settings differ from an output's record stops with `SettingsChangedError`, which names each changed
setting, unless it was asked to start over (`--overwrite`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic_files import write_atomic

#: Version of the record format; a record of another version is treated as made with other settings.
RECORD_VERSION = 1
#: The settings that change a result, each with the option that sets it (for messages), in the order reported.
RESULT_SETTINGS = {
    "weights_sha256": "--model / --revision (the weights)",
    "processor": "the model's image processor settings",
    "threshold": "--threshold",
    "tta": "--tta",
    "zoom": "--zoom",
    "resolution": "--resolution",
    "format": "the output format",
    "record_version": "the record format of carseg",
}
#: The image processor settings that change a result (the size is part of `resolution`).
PROCESSOR_SETTINGS = (
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "keep_aspect_ratio",
    "ensure_multiple_of",
)


class SettingsChangedError(ValueError):
    """Raised when an output holds results made with other settings than the run's, or with unknown ones."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from, for the record; `carseg predict` fills it from `--model` and `--revision`.

    Attributes:
        name_or_path: The folder or Hub repo id.
        revision: The Hub revision asked for, or None.
        weights_file_sha256: sha256 of the `model.safetensors` that was loaded, or None when unknown.
    """

    name_or_path: str
    revision: str | None = None
    weights_file_sha256: str | None = None


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, as `sha256sum` prints it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(model: torch.nn.Module) -> str:
    """A sha256 over a model's parameters and buffers (names, dtypes, shapes and values), whatever their layout."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def changed_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The result settings that differ between two records, as `"--threshold: 0.5 -> 0.99"` lines."""
    old = old or {}
    changes = []
    for key, label in RESULT_SETTINGS.items():
        if old.get(key) != new.get(key):
            before, after = old.get(key), new.get(key)
            if key == "weights_sha256":
                before, after = _model_label(old), _model_label(new)
            elif key == "processor":
                keys = sorted(set(before or {}) | set(after or {}))
                before = {k: (before or {}).get(k) for k in keys if (before or {}).get(k) != (after or {}).get(k)}
                after = {k: (after or {}).get(k) for k in before}
            elif key == "zoom":  # recorded only when on
                before, after = before or "off", after or "off"
            changes.append(f"{label}: {before} -> {after}")
    return changes


def _model_label(record: Mapping[str, Any]) -> str:
    digest = record.get("weights_sha256")
    return f"{record.get('model')} (weights sha256 {digest[:12] if digest else None})"


@dataclass(frozen=True)
class OutputCheck:
    """One output of a run, as `check_outputs` compares it.

    Attributes:
        output: How to name it in messages, e.g. `"the submission sub.csv"`.
        recorded: The settings recorded for its results, or None when it has no record.
        has_results: Whether it holds results that the run would reuse.
        settings: The settings of this run for this output.
    """

    output: str
    recorded: Mapping[str, Any] | None
    has_results: bool
    settings: Mapping[str, Any]


def check_outputs(checks: Sequence[OutputCheck]) -> None:
    """Refuse to add results to outputs that hold results made with other (or unrecorded) settings.

    Every output is checked before any is changed, and the message lists them all.

    Args:
        checks: The run's outputs.

    Raises:
        SettingsChangedError: Naming each such output, each changed setting, and how to proceed.
    """
    problems = []
    for check in checks:
        if not check.has_results:
            continue
        if check.recorded is None:
            problems.append(
                f"{check.output} holds results without a record of the settings that made them (written by an older "
                "carseg or by another tool)"
            )
        elif changes := changed_settings(check.recorded, check.settings):
            problems.append(f"{check.output} holds results made with other settings; changed: {'; '.join(changes)}")
    if problems:
        raise SettingsChangedError(
            f"{'. '.join(problems)}. Pass --overwrite to recompute with this run's settings (the earlier results are "
            "discarded), rerun with the earlier settings to continue, or choose other outputs"
        )


def submission_record_path(submission: str | os.PathLike) -> Path:
    """The record of a submission: `FILE.csv` -> `FILE.csv.carseg.json`."""
    submission = Path(submission)
    return submission.with_name(submission.name + ".carseg.json")


def read_record(path: Path) -> dict[str, Any] | None:
    """Read a JSON record, or None when the file does not exist.

    Raises:
        SettingsChangedError: If the file is not a JSON object (it names the file and the way out).
    """
    if not path.exists():
        return None
    return _json_object(path, path.read_bytes(), "record", "not a JSON object")


def _json_object(path: Path, raw: bytes, kind: str, not_object: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object, or raise a `SettingsChangedError` naming the file and the way out.

    Args:
        path: The file the bytes came from (for the message).
        raw: The UTF-8 bytes.
        kind: What the file is, e.g. `"record"` or `"journal"`.
        not_object: What to say when the JSON is valid but not an object.
    """
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        message = f"{path} is not a carseg {kind} ({error}); delete it or pass --overwrite"
        raise SettingsChangedError(message) from error
    if not isinstance(value, dict):
        raise SettingsChangedError(f"{path} is not a carseg {kind} ({not_object}); delete it or pass --overwrite")
    return value


def write_record(path: Path, record: Mapping[str, Any], indent: int | None = 2) -> None:
    """Write a record as JSON atomically (a temporary file, then a rename); `indent=None` writes one line."""
    text = json.dumps(dict(record), indent=indent, sort_keys=True) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class FolderJournal:
    """The journal of a folder of per-image output files (masks or overlays); see the module docstring.

    Args:
        folder: The output folder.
        kind: `"masks"` or `"overlays"`; the journal is `<folder>/.carseg-<kind>.jsonl`.
        settings: This run's settings (see `BatchPredictor.settings_record`).
        overwrite: Start a new journal with `settings` whatever the folder holds.

    Raises:
        SettingsChangedError: If the folder's journal was written with other settings and `overwrite` is not set.
    """

    def __init__(self, folder: Path, kind: str, settings: Mapping[str, Any], overwrite: bool = False) -> None:
        self.path = self.journal_path(folder, kind)
        self.done: set[str] = set()
        if not overwrite:
            check_outputs([self.output_check(folder, kind, settings)])
        if overwrite or not self.path.exists():
            write_record(self.path, settings, indent=None)  # the first line; the names follow
        else:
            self._read_done()

    @classmethod
    def discard_listed(cls, folder: Path, kind: str) -> None:
        """Delete the files a folder's journal lists (the results of an earlier run), before starting it over."""
        path = cls.journal_path(folder, kind)
        if not path.is_file():
            return
        lines = path.read_bytes().split(b"\n")[1:]
        for line in lines:
            try:
                name = json.loads(line)
            except ValueError:  # a line cut off by a killed process, or not a journal: nothing more to delete
                continue
            if isinstance(name, str) and name == Path(name).name:  # a file of this folder, never a path elsewhere
                (Path(folder) / name).unlink(missing_ok=True)

    @staticmethod
    def journal_path(folder: Path, kind: str) -> Path:
        """`<folder>/.carseg-<kind>.jsonl`."""
        return Path(folder) / f".carseg-{kind}.jsonl"

    @classmethod
    def output_check(cls, folder: Path, kind: str, settings: Mapping[str, Any]) -> OutputCheck:
        """The folder as `check_outputs` compares it: its journal's settings line, if it has a journal."""
        path = cls.journal_path(folder, kind)
        recorded = None
        if path.exists():
            with open(path, "rb") as handle:
                recorded = _parse_settings(path, handle.readline())
        return OutputCheck(f"the {kind} folder {folder}", recorded, path.exists(), settings)

    def _read_done(self) -> None:
        """Read the names listed after the settings line; a last line cut off by a killed process is removed."""
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        for number, line in enumerate(complete.decode("utf-8", errors="replace").split("\n")[1:-1], start=2):
            try:
                self.done.add(json.loads(line))
            except (ValueError, TypeError) as error:
                raise SettingsChangedError(
                    f"{self.path}, line {number}: not a carseg journal ({error}); delete it or pass --overwrite"
                ) from error
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))

    def append(self, names: Iterable[str]) -> None:
        """Record files as written (call after they are in place); durable before returning."""
        names = list(names)
        if not names:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(name) + "\n" for name in names))
            handle.flush()
            os.fsync(handle.fileno())
        self.done.update(names)


def _parse_settings(path: Path, line: bytes) -> dict[str, Any]:
    """The settings line of a folder journal, or a `SettingsChangedError` naming the file."""
    return _json_object(path, line, "journal", "no settings line")
