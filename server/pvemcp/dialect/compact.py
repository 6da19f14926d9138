"""Compact read-only JSON objects for large, uniform answers (the guest index's ``/cluster/resources``).

Why: the guest index holds one ``/cluster/resources`` entry per guest for its whole TTL. Parsed the usual
way each entry is a dict of about fifteen keys, some 1.1 KB of hash table apiece, and at 10,000 guests the
dicts alone cost more than everything else the server keeps (issue #15's memory budget: 100 MB peak
after a 10,000-guest list). The entries are uniform: a few key sets repeat across thousands of objects.
So each object is kept as a tuple of its values plus a reference to one shared key layout, about a
fifth of the dict's size, with one copy of each repeated text value (node, type, status, pool), and
built while the JSON is parsed (``json.loads``'s ``object_hook``), so the full set of dicts never
exists at once.

A :class:`CompactObject` is a read-only :class:`~collections.abc.Mapping`: code that reads entries
(``entry.get("name")``, ``{**entry, ...}``, iteration) works unchanged; nothing may mutate them, which
the index forbids anyway (its entries are shared by every caller).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Layout = dict[str, int]
"""Key -> position in the values tuple; one per distinct key sequence, shared by its objects."""


class CompactObject(Mapping[str, Any]):
    """One JSON object: its values in key order, and the layout shared with its look-alikes."""

    __slots__ = ("_layout", "_values")

    def __init__(self, layout: Layout, values: tuple[Any, ...]) -> None:
        self._layout = layout
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[self._layout[key]]

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``dict.get`` (faster than the Mapping mixin, which goes through an exception)."""
        index = self._layout.get(key)
        return default if index is None else self._values[index]

    def __contains__(self, key: object) -> bool:
        return key in self._layout

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"CompactObject({dict(self)!r})"


def compact_object_hook() -> Callable[[dict[str, Any]], CompactObject]:
    """A ``json.loads`` ``object_hook`` that turns every object into a :class:`CompactObject`.

    Each call returns a new hook with its own tables, so layouts live exactly as long as the objects of
    the answer that use them, and the table of repeated texts is dropped with the hook (``sys.intern``
    would keep a process-wide table that grows with every answer's unique names).
    """
    layouts: dict[tuple[str, ...], Layout] = {}
    texts: dict[str, str] = {}  # this answer's text values, so a repeated one is kept once

    def hook(obj: dict[str, Any]) -> CompactObject:
        keys = tuple(obj)
        layout = layouts.get(keys)
        if layout is None:
            layout = layouts[keys] = {key: index for index, key in enumerate(keys)}
        return CompactObject(layout, tuple(texts.setdefault(v, v) if type(v) is str else v for v in obj.values()))

    return hook


def thaw(value: Any) -> Any:
    """``value`` as plain JSON types again (dicts and lists all the way down), e.g. for a schema handed to
    a validator or a serialiser that accepts only ``dict`` (``json.dumps`` does)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value
