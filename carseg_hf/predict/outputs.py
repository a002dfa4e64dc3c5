"""A run's outputs: checking them against the run's settings, knowing what is done, and writing each batch.

Mask files and overlays are written to a temporary name in their folder and renamed into place, so a file that
exists is whole; each folder has a journal of the files written with its settings (`predict_record.FolderJournal`).
Submission rows go to a resumable `carseg_hf.submission.SubmissionWriter`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic_files import write_atomic
from ..predict_record import FolderJournal, check_outputs
from ..submission import SubmissionWriter, check_submission_target
from .inputs import mask_path_for, output_files, overlay_path_for, submission_name
from .items import PipelineItem
from .options import PredictOptions
from .sources import SourceJournal, photo_fingerprint

_TMP_PREFIX = ".carseg-tmp-"


@dataclass
class RunOutputs:
    """The journals of a run's outputs; None for an output not asked for."""

    masks: FolderJournal | None = None
    overlays: FolderJournal | None = None
    submission: SubmissionWriter | None = None
    #: The photos each output's results were made from, by output kind (`predict.sources`).
    sources: dict[str, SourceJournal] = field(default_factory=dict)


def open_outputs(options: PredictOptions, settings_record: Callable[[str], dict]) -> RunOutputs:
    """Check every output against this run's settings, then create the folders and open the journals.

    Args:
        options: The run's options, which name the outputs.
        settings_record: The run's settings for an output format (`BatchPredictor.settings_record`).

    Raises:
        SettingsChangedError: If an output holds results made with other settings and `overwrite` is not set;
            it lists every such output, and nothing was changed.
        ValueError: If the submission cannot be written (read-only, under a file, a folder).
    """
    folders = [
        (Path(folder), kind, settings_record(output_format))
        for folder, kind, output_format in (
            (options.out_dir, "masks", options.mask_format),
            (options.overlay_dir, "overlays", "jpeg"),
        )
        if folder is not None
    ]
    submission_settings = settings_record("rle")
    if options.submission is not None:
        check_submission_target(options.submission)  # before any folder is made
    if not options.overwrite:
        checks = [FolderJournal.output_check(*folder) for folder in folders]
        if options.submission is not None:
            checks.append(SubmissionWriter.output_check(options.submission, submission_settings))
        check_outputs(checks)
    outputs = RunOutputs()
    for folder, kind, settings in folders:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp_files(folder)
        if options.overwrite:
            FolderJournal.discard_listed(folder, kind)  # starting over: no result of the earlier run stays behind
        setattr(outputs, kind, FolderJournal(folder, kind, settings, options.overwrite))
        sources_path = folder / f".carseg-{kind}-sources.jsonl"
        outputs.sources[kind] = SourceJournal(sources_path, f"the {kind} folder {folder}", options.overwrite)
    if options.submission is not None:
        outputs.submission = SubmissionWriter(options.submission, submission_settings, overwrite=options.overwrite)
        sources_path = Path(f"{options.submission}.carseg-sources.jsonl")
        what = f"the submission {options.submission}"
        outputs.sources["submission"] = SourceJournal(sources_path, what, options.overwrite)
    return outputs


def _output_names(path: Path, options: PredictOptions) -> dict[str, str]:
    """The name of each output that `path` gives, by output kind."""
    files = output_files(path, options.out_dir, options.overlay_dir, options.mask_format)
    return {"submission": submission_name(path), **{kind: file.name for kind, file in files.items()}}


def check_sources(paths: Sequence[Path], outputs: RunOutputs, options: PredictOptions) -> None:
    """Refuse a rerun whose outputs hold results of other photos of the same names (`predict.sources`)."""
    fingerprints: dict[Path, str] = {}  # each photo read once, whatever the number of outputs that record it

    def fingerprint_of(path: Path) -> str:
        if path not in fingerprints:
            fingerprints[path] = photo_fingerprint(path)
        return fingerprints[path]

    for kind, journal in outputs.sources.items():
        journal.check(((_output_names(path, options)[kind], path) for path in paths), fingerprint_of)


def pending_items(paths: Sequence[Path], outputs: RunOutputs, options: PredictOptions) -> list[PipelineItem]:
    """The images with an output still to write, each with what it needs (a mask and/or a submission row)."""
    items = []
    out_dir = None if options.out_dir is None else Path(options.out_dir)
    overlay_dir = None if options.overlay_dir is None else Path(options.overlay_dir)
    for path in paths:
        need_mask = out_dir is not None and not _done(outputs.masks, mask_path_for(path, out_dir, options.mask_format))
        need_mask |= overlay_dir is not None and not _done(outputs.overlays, overlay_path_for(path, overlay_dir))
        need_row = outputs.submission is not None and submission_name(path) not in outputs.submission.done
        if need_mask or need_row:
            items.append(PipelineItem(path=path, need_mask=need_mask, need_row=need_row))
    return items


def _done(journal: FolderJournal | None, path: Path) -> bool:
    """Whether an output file was written with this run's settings: listed in its folder's journal and present."""
    return journal is not None and path.name in journal.done and path.is_file()


def write_batch(batch: list[PipelineItem], outputs: RunOutputs, options: PredictOptions) -> None:
    """Write a computed batch's mask files, overlays and submission rows, then record them in the journals."""
    masks, overlays, rows = [], [], []
    for item in batch:
        if item.mask is not None and outputs.masks is not None:
            path = mask_path_for(item.path, Path(options.out_dir), options.mask_format)
            _write_mask_atomic(item.mask, path, options.mask_format)
            masks.append(path.name)
        if item.mask is not None and outputs.overlays is not None:
            path = overlay_path_for(item.path, Path(options.overlay_dir))
            _write_overlay_atomic(item.path, item.mask, path)
            overlays.append(path.name)
        if item.rle is not None:
            rows.append((submission_name(item.path), item.rle))
    for journal, names in ((outputs.masks, masks), (outputs.overlays, overlays)):
        if journal is not None:
            journal.append(names)
    if rows:
        outputs.submission.write_rows(rows)
    if outputs.sources:
        done = [item for item in batch if item.mask is not None or item.rle is not None]
        fingerprints = {item.path: photo_fingerprint(item.path) for item in done}  # each photo read once
        for kind, journal in outputs.sources.items():
            written = [item for item in done if (item.rle if kind == "submission" else item.mask) is not None]
            journal.append(
                (_output_names(item.path, options)[kind], item.path, fingerprints[item.path]) for item in written
            )


def _write_atomic(path: Path, save: Callable[[Path], object]) -> None:
    """Call `save(tmp)` on a temporary name beside `path`, then rename it into place (a file that exists is whole)."""
    write_atomic(path, save, tmp_name=f"{_TMP_PREFIX}{os.getpid()}-{path.name}")  # keeps the extension for the encoder


def _write_mask_atomic(mask: np.ndarray, path: Path, mask_format: str) -> None:
    """Write a mask to `path` atomically, as a 0/255 PNG or a 0/1 palette GIF."""
    from ..overlay import save_mask_gif, save_mask_png

    _write_atomic(path, lambda tmp: save_mask_png(mask, tmp) if mask_format == "png" else save_mask_gif(mask, tmp))


def _write_overlay_atomic(image_path: Path, mask: np.ndarray, path: Path) -> None:
    """Write the photo with its predicted car tinted (`overlay.prediction_overlay`) to `path` as a JPEG, atomically."""
    from ..image_io import load_rgb
    from ..overlay import prediction_overlay

    overlay = Image.fromarray(prediction_overlay(load_rgb(image_path), mask))  # decoded as for the prediction
    _write_atomic(path, lambda tmp: overlay.save(tmp, format="JPEG", quality=90))


def _remove_stale_tmp_files(out_dir: Path) -> None:
    """Remove temporary mask files left by a killed run (their process is gone)."""
    for tmp in out_dir.glob(f"{_TMP_PREFIX}*"):
        pid = tmp.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except PermissionError:
                pass
