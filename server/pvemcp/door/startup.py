"""Start-up without the cyclic garbage collector: the server's imports, then one ``freeze``.

Why (issue #15, measured by ``bench/bench_proof.py``): starting ``pvemcp serve`` is mostly importing
the MCP SDK, whose pydantic models build about a hundred thousand objects. With the collector on,
CPython runs a generation-0 collection every 700 net allocations and, as the survivors age, walks them
again in the older generations: some 260 collections during the imports, which free about 1,900 of
the ~110,000 objects built (under 2 %) and cost roughly a tenth of the start-up (about 75 ms of
690 ms on the 2-core machine this project is measured on). Nearly everything built during start-up
lives as long as the process: modules, classes, schemas, the catalog.

So ``serve`` pauses the collector before its imports (``pvemcp.cli``) and resumes it once the server
is built, just before it starts answering (``cmd_serve``). Resuming first *freezes* what exists
(:func:`gc.freeze`): those objects move to the permanent generation, which later collections do not
walk, so the pauses while serving are shorter too. The price is the start-up's own cyclic garbage
(those ~2,000 objects, a few hundred KB), which is kept for the life of the process instead of a
full collection on the first request's path (about 80 ms).

The pause is bounded by construction: nothing but the start-up runs between ``pause`` and
``resume``, and ``resume`` is idempotent and also runs when the start-up fails.
"""

from __future__ import annotations

import gc

_paused = False


def pause_collector() -> None:
    """Stop automatic collections for the start-up (a no-op if the collector is already off)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """Freeze what start-up built, then collect automatically again (only if :func:`pause_collector`
    turned it off: an embedding program that runs with the collector off keeps it off)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
