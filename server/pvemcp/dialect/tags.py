"""Guest tags as Proxmox reads them: the one tag parser of pvemcp.

PVE stores a guest's ``tags`` as one string and reads it with ``PVE::Tools::split_list`` (pve-common
``src/PVE/ParseUtils.pm`` ``split_list``: NUL-separated if the text has a NUL, else split on ``,``, ``;`` and
whitespace). When it writes tags it normalises them with ``PVE::GuestHelpers::get_unique_tags``
(pve-guest-common ``src/PVE/GuestHelpers.pm``): lower-cased unless datacenter.cfg's ``tag-style`` sets
``case-sensitive`` (off by default), duplicates dropped. A tag itself matches ``$PVE_TAG_RE``
(pve-common ``src/PVE/JSONSchema.pm``: ``[a-z0-9_][a-z0-9_\\-\\+\\.]*``, case-insensitive, ASCII), so
case-folding is ``lc``.  pvemcp compares tags the way the default cluster does: case-folded.
"""

from __future__ import annotations

from collections.abc import Iterable

from pvemcp.dialect.formats import split_list


def tag_list(value: object) -> tuple[str, ...]:
    """The tags of ``value`` (PVE's tag text, or a list of tags), case-folded, first occurrence kept, in order."""
    if value is None:
        return ()
    items: Iterable[object]
    if isinstance(value, str):
        items = split_list(value)
    elif isinstance(value, Iterable):
        items = value
    else:
        items = [value]
    seen: dict[str, None] = {}
    for item in items:
        tag = str(item).strip().casefold()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


def parse_tags(value: object) -> frozenset[str]:
    """The tags of ``value`` as a set, for membership and scope tests (see :func:`tag_list`)."""
    return frozenset(tag_list(value))
