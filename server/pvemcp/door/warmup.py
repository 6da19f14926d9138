"""Background warm-up: once the client is connected, load what its first tool call will need.

Without it the first ``tools/call`` after start pays for deferred imports, the API spec, the argument
validators, the TLS connection to the cluster and the guest index (about 170 ms against 5 ms for the
second call, issue #15). Doing that work before answering ``initialize`` would delay every start, and
a slow cluster would delay ``tools/list``; so it starts once the first ``tools/list`` has been answered
(or ``LISTING_GRACE_S`` after the first message, for a host that lists nothing), runs beside the
session, and never blocks or fails a request:

* the CPU-heavy part (imports, the 2.6 MB spec) runs in a worker thread, so the event loop keeps
  answering ``tools/list`` and pings meanwhile;
* network work is ordinary async I/O with the client's own timeouts; a call that arrives while it is
  in flight shares it (the client and the guest index are single-flight) instead of repeating it;
* any failure is logged and dropped: the first call meets the problem itself and reports it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server import ServerRequestContext

logger = logging.getLogger(__name__)

WarmStep = Callable[[], Awaitable[None]]
LISTING_GRACE_S = 0.25  # how long the warm-up waits for the host's tools/list before it starts anyway
WRITE_GRACE_S = 0.05  # then the time the tool list's answer gets to reach the client undisturbed


class Warmup:
    """Runs ``step`` once, in the background, after the first session's tool listing is answered.

    ``lifespan`` (the Server's lifespan) owns the task group the warm-up runs in, so it ends with the
    server; ``middleware`` notices the first answered message and the first answered ``tools/list``.
    """

    def __init__(self, step: WarmStep) -> None:
        self._step = step
        self._group: TaskGroup | None = None
        self._started = False
        self._listed: anyio.Event | None = None

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator[dict[str, Any]]:
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield {}
            finally:
                self._group = None
                group.cancel_scope.cancel()

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        result = await call_next(ctx)
        if self._group is not None and not self._started:
            self._started = True
            self._listed = anyio.Event()
            self._group.start_soon(self._run, self._listed)
        if ctx.method == "tools/list" and self._listed is not None:
            self._listed.set()
        return result

    async def _run(self, listed: anyio.Event) -> None:
        # A host lists the tools right after the handshake: the warm-up's CPU work would slow that
        # answer (the worker thread holds the GIL in 5 ms slices), so it waits for it, or for a
        # moment of quiet when the host lists nothing.
        with anyio.move_on_after(LISTING_GRACE_S):
            await listed.wait()
        # The answer is written to stdout by a worker thread that needs the GIL too: let it go out first.
        await anyio.sleep(WRITE_GRACE_S)
        try:
            await self._step()
        except Exception as exc:  # a warm-up problem must never reach a request
            logger.info("warm-up stopped: %s (the first call will meet and report it)", exc)
