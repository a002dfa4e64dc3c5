"""The pieces of `carseg_hf.predict` on their own: the reader and writer stages, options and `--resolution`."""

from __future__ import annotations

import threading
import time

import pytest

from carseg_hf.cli import build_parser
from carseg_hf.commands.predict import parse_resolution
from carseg_hf.predict.options import DEVICE_DEFAULTS, PredictOptions
from carseg_hf.predict.stream import BatchReader, BatchWriter


def test_the_reader_keeps_order_and_runs_at_most_prefetch_batches_ahead():
    stop, decoded = threading.Event(), []

    def decode(item: int) -> int:
        decoded.append(item)
        return item * 10

    reader = BatchReader(list(range(10)), 3, decode, workers=2, prefetch=1, stop=stop)
    reader.start()
    batches = reader.batches()
    first = next(batches)
    time.sleep(0.3)  # room for the reader to run ahead, if it could
    # Back-pressure: batch 2 waits in the queue, batch 3 is submitted and the reader blocks; batch 4 is not read.
    assert 9 not in decoded
    results = [[future.result() for future in batch] for batch in [first, *batches]]  # before close() cancels
    reader.close()
    assert results == [
        [0, 10, 20],
        [30, 40, 50],
        [60, 70, 80],
        [90],
    ]


def test_a_writer_error_stops_the_pipeline_and_is_raised_in_the_calling_thread():
    stop, written = threading.Event(), []

    def write(batch: list[int]) -> None:
        if batch == [2]:
            raise OSError("disk full")
        written.append(batch)

    writer = BatchWriter(write, prefetch=1, stop=stop)
    writer.start()
    reader = BatchReader(list(range(100)), 1, lambda item: item, workers=1, prefetch=1, stop=stop)
    reader.start()
    handed = 0
    for futures in reader.batches():
        if not writer.put([future.result() for future in futures]):
            break  # the writer stopped
        handed += 1
    writer.close()
    reader.close()
    assert stop.is_set() and written == [[0], [1]] and handed < 100
    with pytest.raises(OSError, match="disk full"):
        writer.raise_error()


def test_the_writer_finishes_every_queued_batch_on_close():
    written = []
    writer = BatchWriter(lambda batch: (time.sleep(0.01), written.append(batch)), prefetch=4, stop=threading.Event())
    writer.start()
    for index in range(6):
        assert writer.put([index])
    writer.close()
    assert written == [[index] for index in range(6)]
    writer.raise_error()  # no error: nothing raised


def test_resolution_is_parsed_once_by_the_cli_and_checked_by_the_options():
    assert parse_resolution("processor") == "processor" and parse_resolution("native") == "native"
    assert parse_resolution("1024X768") == (1024, 768)
    for bad in ("0x5", "big", "12", "-1x5", "768x11", "31x960"):
        with pytest.raises(ValueError, match=rf"--resolution must be 'processor', 'native' or HEIGHTxWIDTH.*{bad}"):
            parse_resolution(bad)
    PredictOptions(resolution=(64, 96)).validate()
    PredictOptions(resolution=(32, 32)).validate()
    for bad in ("64x96", (64, 0), (64,), (64.0, 96), (768, 11)):
        with pytest.raises(ValueError, match="--resolution must be 'processor', 'native' or \\(height, width\\)"):
            PredictOptions(resolution=bad).validate()


def test_device_defaults_are_written_once_and_shown_by_the_help():
    gpu = PredictOptions.for_device("cuda", submission="s.csv", workers=None)
    assert (gpu.batch_size, gpu.workers, gpu.dtype, gpu.submission) == (16, 4, "bf16", "s.csv")
    cpu = PredictOptions.for_device("cpu", batch_size=3)
    assert (cpu.batch_size, cpu.workers, cpu.dtype) == (3, DEVICE_DEFAULTS["cpu"]["workers"], "fp32")
    predict = build_parser()._subparsers._group_actions[0].choices["predict"]
    text = " ".join(predict.format_help().split())
    for shown in (
        "(default: 16 on GPU, 1 on CPU)",
        "(default: 4 on GPU, 1 on CPU)",
        "(default: auto, bf16 on GPU, fp32 on CPU)",
        "(default: png)",
        "(default: processor)",
        "(default: none)",
    ):
        assert shown in text, shown
    assert predict.get_default("format") == PredictOptions().mask_format
