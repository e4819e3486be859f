"""Running a call in a forked child with a time limit, for tests of hang and crash defences.

Without its defence such a call runs for minutes (quadratic regexes, billion laughs) or
kills the process (libyaml recursing on deep nesting). In a child it fails the one test
instead: ``run`` raises ``IsolatedFailure`` when the child overruns, crashes or raises.
The seconds it reports are the child's CPU time, so that other work on a busy machine
does not make a linear call look slow; a call stuck waiting still hits the wall-clock limit.
"""
from __future__ import annotations

import multiprocessing
import time
import traceback
import typing as t

DEFAULT_TIMEOUT = 20.0


class IsolatedFailure(AssertionError):
    pass


def _child(connection: t.Any, function: t.Callable[..., t.Any], args: tuple[t.Any, ...]) -> None:
    started = time.process_time()
    try:
        value = function(*args)
        connection.send(("ok", value, time.process_time() - started))
    except BaseException as exc:  # pylint: disable=broad-except  # reported to the parent
        connection.send(("raised", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                         time.process_time() - started))
    finally:
        connection.close()


def run(function: t.Callable[..., t.Any], *args: t.Any, timeout: float = DEFAULT_TIMEOUT) -> tuple[t.Any, float]:
    """``function(*args)`` in a forked child within ``timeout`` wall-clock seconds: its
    (picklable) return value and the CPU seconds it took."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, function, args), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise IsolatedFailure(f"{getattr(function, '__name__', function)} did not finish within {timeout:g} s"
                                  if child.is_alive() else
                                  f"{getattr(function, '__name__', function)} killed its process "
                                  f"(exit code {child.exitcode})")
        try:
            status, value, seconds = receiver.recv()
        except EOFError:
            child.join(5)
            raise IsolatedFailure(f"{getattr(function, '__name__', function)} killed its process "
                                  f"(exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if status != "ok":
        raise IsolatedFailure(value)
    return value, seconds
