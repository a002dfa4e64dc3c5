"""The two background stages of batch prediction: a reader that decodes ahead of the model, a writer behind it.

Each stage talks to the calling thread (which runs the model) through a bounded queue, so memory stays bounded
whatever the number of inputs, and keeps order: batches are decoded, computed and written in input order. Both
stages watch one `stop` event, set when the writer fails (the reader then stops queuing, and the calling thread's
`BatchWriter.put` returns False) and when the run ends (`BatchReader.close`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: Marks the end of a queue's batches.
_DONE = object()
#: How long a blocked queue operation waits before it looks at the `stop` event again.
_POLL_SECONDS = 0.1


def put_until_stopped(target: queue.Queue, value: object, stop: threading.Event) -> bool:
    """Put `value` into a bounded queue, waiting for room as long as `stop` is not set.

    Returns:
        True once it is queued; False if `stop` was set first.
    """
    while not stop.is_set():
        try:
            target.put(value, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


class BatchReader:
    """Submits each batch's items to a pool of decoding threads, in order, from a thread of its own.

    The futures of each batch wait in a queue for the calling thread (`batches`), at most `prefetch` batches ahead,
    so the reader runs only that far ahead of the model.

    Args:
        items: The items to decode.
        batch_size: Items per batch.
        decode: Decodes one item in a worker thread; its result is the future's.
        workers: Decoding threads.
        prefetch: Batches queued ahead of the calling thread.
        stop: Stops the reader when set; `close` sets it.
    """

    def __init__(
        self,
        items: Sequence[Any],
        batch_size: int,
        decode: Callable[[Any], Any],
        workers: int,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        self._items = items
        self._batch_size = batch_size
        self._decode = decode
        self._workers = workers
        self._stop = stop
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the decoding threads and the reader thread."""
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="carseg-decode")
        self._thread = threading.Thread(target=self._produce, name="carseg-reader", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        """The reader thread: queue each batch's futures; on `stop`, cancel the batch that found no room."""
        for offset in range(0, len(self._items), self._batch_size):
            batch = self._items[offset : offset + self._batch_size]
            futures = [self._pool.submit(self._decode, item) for item in batch]
            if not put_until_stopped(self._queue, futures, self._stop):
                for future in futures:
                    future.cancel()
                return
        put_until_stopped(self._queue, _DONE, self._stop)

    def batches(self) -> Iterator[list[Future]]:
        """Each batch's decoding futures, in order, until the last batch, or until `stop` is set while none waits."""
        while True:
            try:
                futures = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if futures is _DONE:
                return
            yield futures

    def close(self) -> None:
        """Stop the reader, wait for it and for the decoding under way; decoding not yet started is cancelled."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)


class BatchWriter:
    """Writes computed batches, in order, from a thread of its own; its first error stops the pipeline.

    Args:
        write: Writes one batch, in the writer thread.
        prefetch: Batches that may wait for the writer before `put` blocks.
        stop: Set by the writer when `write` raises.

    Attributes:
        error: The exception `write` raised, or None; `raise_error` re-raises it in the calling thread.
    """

    def __init__(self, write: Callable[[Any], None], prefetch: int, stop: threading.Event) -> None:
        self._write = write
        self._stop = stop
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._thread = threading.Thread(target=self._run, name="carseg-writer", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def put(self, batch: Any) -> bool:
        """Queue a batch for writing, waiting for room; False if the pipeline stopped first (the writer failed)."""
        return put_until_stopped(self._queue, batch, self._stop)

    def _run(self) -> None:
        """The writer thread: write batches until the end marker, or until one fails."""
        while True:
            batch = self._queue.get()
            if batch is _DONE:
                return
            try:
                self._write(batch)
            except BaseException as error:  # handed to the calling thread, which re-raises it
                self.error = error
                self._stop.set()
                return

    def close(self) -> None:
        """Let the writer finish every queued batch, so that no finished work is lost, and wait for it.

        A writer that failed has stopped already and is left as it is.
        """
        if self.error is not None:
            return
        while self._thread.is_alive():
            try:
                self._queue.put(_DONE, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                continue
        self._thread.join()

    def raise_error(self) -> None:
        """Re-raise the writer's error, if it had one."""
        if self.error is not None:
            raise self.error
