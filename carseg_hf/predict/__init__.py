"""Streaming batch inference: folders of images to mask files and/or a Kaggle submission, resumable.

Three stages overlap: a thread pool decodes the next batches, the calling thread runs the model, and a writer thread
saves masks and submission rows. On the device one batch stays in flight: the calling thread queues batch N + 1 before
it waits for batch N's run boundaries and masks, which come back through asynchronous copies, so a GPU does not idle
while the host builds RLE strings. Queues between the stages are bounded, so memory does not grow with the number of
inputs. Every mask file is written to a temporary name and renamed into place, and submission rows go to a journal
(`<submission>.partial`, a plain CSV flushed after every batch) that becomes the submission only at the end, so an
interrupted run leaves no half-written file and a rerun continues where it stopped. Each output records the settings
that produced it (`carseg_hf.predict_record`), and a rerun with other settings stops instead of mixing results.

Modules, one stage or concern each:

- `options`: `PredictOptions` (a run's settings) and `PredictSummary` (what it did); imports no heavy library.
- `inputs`: `expand_inputs` (files, folders, globs) and the names of the output files.
- `decoding`: reading and decoding the images (`ImageDecoder`).
- `loop`: `BatchPredictor`, the model's stage and the run that ties the stages together.
- `zooming`: zoom's second pass on the device (`--zoom`, `carseg_hf.zoom`).
- `in_flight`: the groups and batches queued on the device while the next batch is prepared.
- `compiling`: `torch.compile` of the run's model (`--compile`).
- `async_copy`: device-to-host copies that do not wait for the device, and `rle_encode_torch_async`.
- `stream`: the reader and writer threads (`BatchReader`, `BatchWriter`).
- `outputs`: checking, opening and writing a run's mask files, overlays and submission rows.
- `items`: `PipelineItem`, one image on its way through the stages.

The names below are importable from `carseg_hf.predict` itself; they load on first use, so that importing
`carseg_hf.predict.options` (as `carseg predict --help` does) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

#: Public names and the submodule that defines each; imported on first access (PEP 562).
_EXPORTS = {
    "BatchPredictor": "loop",
    "COMPILE_MODES": "options",
    "DTYPES": "loop",
    "DTYPE_NAMES": "options",
    "MASK_FORMATS": "options",
    "PredictOptions": "options",
    "PredictSummary": "options",
    "expand_inputs": "inputs",
    "mask_path_for": "inputs",
    "overlay_path_for": "inputs",
    "submission_name": "inputs",
}

__all__ = [  # the keys of _EXPORTS, written out so that tools see them
    "BatchPredictor",
    "COMPILE_MODES",
    "DTYPES",
    "DTYPE_NAMES",
    "MASK_FORMATS",
    "PredictOptions",
    "PredictSummary",
    "expand_inputs",
    "mask_path_for",
    "overlay_path_for",
    "submission_name",
]

if TYPE_CHECKING:
    from .inputs import expand_inputs, mask_path_for, overlay_path_for, submission_name
    from .loop import DTYPES, BatchPredictor
    from .options import COMPILE_MODES, DTYPE_NAMES, MASK_FORMATS, PredictOptions, PredictSummary

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
