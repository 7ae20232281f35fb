"""Sleep until a loop's trigger fires, its interval passes or the operator stops: no polling.

Why: each Repository and Sync loop used to wake every 0.5 s to look at kopf's stop flag. With
100 Syncs that was 200 wake-ups a second, about 15 ms of CPU every second while nothing at all
happened (``benchmarks/scale.py``: a third of a no-op interval's CPU at a 20 s interval, and it
grows with the interval, so most of it at Flux-like intervals of minutes). kopf's stop flag can be
awaited, so the loop now waits on the trigger and the flag together and wakes only for one of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sealed_gitops.operator.triggers import Trigger

__all__ = ["POLL", "sleep_until_woken"]

#: Longest single wait between checks of a stop flag that cannot be awaited (plain booleans, as
#: tests may pass), in seconds.
POLL = 0.5


async def sleep_until_woken(trigger: Trigger, *, seconds: float, stopped: Any) -> list[str]:
    """The trigger's reasons, ``["interval"]`` after ``seconds``, or ``["stopped"]``.

    ``stopped`` is kopf's daemon stop flag (truthy once set; ``stopped.wait()`` is awaitable);
    an object without ``wait`` is checked every :data:`POLL` seconds instead.
    """
    if stopped:
        return ["stopped"]
    waiter = getattr(stopped, "wait", None)
    if waiter is None:
        return await _polling(trigger, seconds=seconds, stopped=stopped)
    woken = asyncio.ensure_future(trigger.wait(seconds))
    stopping = asyncio.ensure_future(waiter())
    try:
        await asyncio.wait({woken, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # A cancelled trigger wait leaves its reasons in place: nothing is lost. Not awaited:
        # should this task itself be cancelled here, that must not be swallowed.
        for task in (woken, stopping):
            task.cancel()
    if woken.done() and not woken.cancelled():
        return woken.result()
    return ["stopped"]


async def _polling(trigger: Trigger, *, seconds: float, stopped: Any) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not stopped:
        left = deadline - loop.time()
        if left <= 0:
            return ["interval"]
        reasons = await trigger.wait(min(left, POLL))
        if reasons != ["interval"]:
            return reasons
    return ["stopped"]
