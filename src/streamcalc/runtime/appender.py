"""The runner's log appends, one in flight beside the next batch.

An append is mostly LMDB page writes and an fsync, which release the GIL: done on a thread of
its own, a batch's outputs are written on the second core while the runner computes the next
batch. Order and exactly-once stay as with a blocking append (docs/exactly-once.md): at most
one append is in flight, the next waits for it, and the state commit waits for it too, so
state never commits ahead of the outputs it produced.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from streamcalc.log import AppendEntry, Log, ProducerStamp
from streamcalc.runtime import failpoints


class Appender:
    def __init__(self, log_: Log) -> None:
        self._log = log_
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, entries: Sequence[AppendEntry], stamp: ProducerStamp) -> None:
        """Append on a thread; the one before must have been waited for."""
        assert self._thread is None, "one append in flight at most"
        thread = threading.Thread(
            target=self._append, args=(entries, stamp), name=f"append-{stamp.producer_id}", daemon=True
        )
        thread.start()  # kept only once started: a thread that never ran has nothing to wait for
        self._thread = thread

    def wait(self) -> None:
        """Return once nothing is in flight; raises what the last append raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def abandon(self) -> None:
        """Wait for the append in flight and drop its failure: the caller is failing already,
        and recovery must see the log as that append left it."""
        with contextlib.suppress(Exception):
            self.wait()

    def _append(self, entries: Sequence[AppendEntry], stamp: ProducerStamp) -> None:
        try:
            self._log.append(entries, stamp)
        except BaseException as e:
            self._error = e
            return
        failpoints.reached("after_append", stamp.seq)
