"""``LoopShared``: a blocking call run in a worker thread, once per event loop at a time.

Every task of a loop that asks while a run is under way awaits that same run; a cancelled task
does not cancel it for the others (callers ``await asyncio.shield(...)``), and a failure
reaches every task that waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopShared(Generic[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[T]]
        self._runs = weakref.WeakKeyDictionary()

    def run(self) -> asyncio.Future[T]:
        """This loop's run under way, or a new one."""
        loop = asyncio.get_running_loop()
        run = self._runs.get(loop)
        if run is None:
            run = self._runs[loop] = asyncio.ensure_future(asyncio.to_thread(self._call))
            run.add_done_callback(self._forget)
        return run

    def forget_all(self) -> None:
        """In a forked child: the parent's loops and runs are not ours."""
        self._runs = weakref.WeakKeyDictionary()

    def _forget(self, run: asyncio.Future[T]) -> None:
        with contextlib.suppress(KeyError):
            if self._runs[run.get_loop()] is run:
                del self._runs[run.get_loop()]
        if not run.cancelled():
            run.exception()  # retrieved here too: every waiter may have been cancelled
