"""Ctrl-C and SIGTERM while a run writes a row wait until the row and the counts summary.json
reports agree (results/recorder.py holds them for a step's or a message's row and its
counts), then stop the run as before: an interrupted run's steps.csv has exactly the steps
its summary says it reached.

The CLI's signal handlers call ``interrupt``; Python's own Ctrl-C handler (netsim used as a
library) raises at once, as it always did.
"""

from __future__ import annotations

_held = 0  # rows being written now
_pending: BaseException | None = None  # an interrupt that came while one was


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
