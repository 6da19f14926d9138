"""Start-up without the cyclic garbage collector: the server's imports, then one ``freeze``.

Why (issue #15, measured by ``bench/bench_proof.py``): starting ``pvemcp serve`` is mostly importing
the MCP SDK, whose pydantic models build about a hundred thousand objects. With the collector on,
CPython runs a generation-0 collection every 700 net allocations and, as the survivors age, walks them
again in the older generations: some 260 collections during the imports, which free about 1,900 of
the ~110,000 objects built (under 2 %) and cost roughly a tenth of the start-up (about 75 ms of
690 ms on the 2-core machine this project is measured on). Nearly everything built during start-up
lives as long as the process: modules, classes, schemas, the catalog.

So ``serve`` pauses the collector before its imports (``pvemcp.cli``) and resumes it once the server
is built, just before it starts answering (``cmd_serve``). That first resume *freezes* what exists
(:func:`gc.freeze`): those objects move to the permanent generation, which later collections do not
walk, so the pauses while serving are shorter too. The price is the start-up's own cyclic garbage
(those ~1,900 objects, a few hundred KB), which is kept for the life of the process instead of a
full collection on the first request's path (about 80 ms).

The background warm-up pauses it the same way around its CPU part (the first call's imports, the API
schema, the validators: 102 ms instead of 174 ms, measured), while requests may be answered beside
it. Only the first resume of a process freezes: a later one must not make the garbage of the requests
served meanwhile permanent.

The pauses are bounded by construction: each lasts one piece of CPU work, ``resume`` runs in a
``finally`` (start-up errors included), and it is idempotent.
"""

from __future__ import annotations

import gc

_paused = False
_frozen = False  # the start-up's objects were frozen (once per process)


def pause_collector() -> None:
    """Stop automatic collections for a piece of CPU work (a no-op if the collector is already off)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """Collect automatically again; the first time, after freezing what start-up built. Only if
    :func:`pause_collector` turned it off: an embedding program that runs with the collector off keeps it
    off."""
    global _paused, _frozen
    if _paused:
        _paused = False
        if not _frozen:
            gc.freeze()
            _frozen = True
        gc.enable()
