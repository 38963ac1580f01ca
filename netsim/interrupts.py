"""Ctrl-C and SIGTERM while a run writes a row wait until the row and the counts summary.json
reports agree (results/recorder.py holds them for a step's or a message's row and its
counts), then stop the run as before: an interrupted run's steps.csv has exactly the steps
its summary says it reached.

A run that stops early writes its summary the same way (``stopping``): a second Ctrl-C or
SIGTERM waits until it is written (a pool's worker gets SIGTERM twice when another worker
ends first, netsim/executor.py), so a stopped run's summary.json always says why and what
it reached.

The CLI's and a pool worker's signal handlers call ``interrupt``; Python's own Ctrl-C
handler (netsim used as a library) raises at once, as it always did.
"""

from __future__ import annotations

import contextlib

_held = 0  # rows (or a stopped run's summary) being written now
_pending: BaseException | None = None  # an interrupt that came while one was (or again)


def hold() -> None:
    global _held
    _held += 1


def release() -> None:
    """The row is written and counted: an interrupt that came meanwhile is raised now."""
    global _held, _pending
    _held -= 1
    if not _held and _pending is not None:
        exc, _pending = _pending, None
        raise exc


def interrupt(exc: BaseException) -> None:
    """What a signal handler calls instead of ``raise exc``: raises it now, or, while a row
    is being written, at its release."""
    global _pending
    if _held:
        _pending = exc
        return
    _pending = None
    raise exc


def again(exc: BaseException) -> None:
    """What a signal handler calls for an interrupt that comes again while the first is still
    stopping the run: never raised now, where it could cut short the writing of the summary
    before ``stopping`` holds it, but at the next row's release, should the first have been
    lost and the run gone on; ``stopping`` drops it."""
    global _pending
    _pending = exc


@contextlib.contextmanager
def stopping(reason: BaseException):
    """While a run that ends early for ``reason`` writes what it reached: an interrupt that
    comes meanwhile waits until that is written. It is then dropped if ``reason`` is an
    interrupt already (the run stops as the first one said), else raised (a run that failed:
    the interrupt stops what would come next)."""
    global _pending
    hold()
    try:
        yield
    finally:
        if _held == 1 and not isinstance(reason, Exception):
            _pending = None
        release()


def end_with(exc: BaseException, end) -> None:
    """For an interrupt caught in an asyncio task that must not end with it (a stream
    callback's task, which asyncio would log, traceback and all): ``end`` (the run's future)
    gets it, or, once ``end`` is done, the running loop raises it from a plain callback, as a
    signal that lands between tasks does."""
    if end.done():
        end.get_loop().call_soon(_raise, exc)
    else:
        end.set_exception(exc)


def _raise(exc: BaseException) -> None:
    raise exc
