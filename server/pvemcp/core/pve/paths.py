"""Building request paths from spec templates, safely.

A path parameter comes from a model's tool arguments, i.e. from untrusted text.  If ``node`` could be
``pve1/qemu/100/status/stop`` or ``..`` or ``%2e%2e``, a read-only tool could be steered to a different,
destructive endpoint.  So every value is validated (no ``/``, no ``\\``, no ``.``/``..``, no ``%``, no
control characters, not empty) and then percent-encoded into exactly one path segment, and only templates
the API spec knows are accepted (the client checks that, see ``client.py``).  The one exception is the
volume id at the end of ``…/storage/{storage}/content/{volume}``: PVE hands that whole tail to the volume
handler, so its ``/`` is allowed (each part still validated) and sent encoded.

Query and body values get PVE's encoding: booleans as ``1``/``0`` (PVE rejects ``true`` in form data),
lists as repeated keys, ``None`` dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from pvemcp.core.pve.errors import PveError

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")
MAX_SEGMENT_LEN = 512


def template_params(template: str) -> tuple[str, ...]:
    """Names of the ``{placeholders}`` of a path template, in order."""
    return tuple(_PLACEHOLDER_RE.findall(template))


def _refuse(method: str, template: str, name: str, problem: str) -> PveError:
    return PveError(
        kind="params",
        message="path parameter refused before sending",
        errors={name: problem},
        hint="pass a plain identifier (node name, vmid, storage id, snapshot name, UPID); nothing was sent.",
        method=method,
        path=template,
    )


def encode_segment(value: object, *, name: str = "value", method: str = "", template: str = "") -> str:
    """Validate one path parameter value and percent-encode it as a single segment.

    ``:``, ``@`` and ``!`` stay literal (legal in a path segment and common in UPIDs, volume ids and
    token ids); everything outside RFC 3986 unreserved characters is percent-encoded.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _refuse(method, template, name, f"must be a string or integer, not {type(value).__name__}")
    text = str(value)
    if text == "":
        raise _refuse(method, template, name, "must not be empty")
    if len(text) > MAX_SEGMENT_LEN:
        raise _refuse(method, template, name, f"must be at most {MAX_SEGMENT_LEN} characters")
    if text in (".", ".."):
        raise _refuse(method, template, name, "must not be '.' or '..'")
    if "/" in text or "\\" in text:
        raise _refuse(method, template, name, "must not contain '/' or '\\'")
    if "%" in text:
        raise _refuse(method, template, name, "must not contain '%' (no pre-encoded values)")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise _refuse(method, template, name, "must not contain control characters")
    if text != text.strip():
        raise _refuse(method, template, name, "must not start or end with whitespace")
    return quote(text, safe=":@!")


def takes_volume_id(template: str, name: str) -> bool:
    """Whether ``{name}`` is the tail of a fragment-delimited subtree, where a ``/`` belongs to the value.

    pve-storage ``PVE/API2/Storage/Status.pm`` registers ``{storage}/content`` with ``fragmentDelimiter => ''``
    and pve-common ``RESTHandler::map_path_to_methods`` hands everything after ``content/`` to ``{volume}``;
    volume ids such as ``local:vztmpl/debian.tar.zst`` or ``local:backup/vzdump-….vma.zst`` need the ``/``.
    """
    return name == "volume" and template.endswith("/storage/{storage}/content/{volume}")


def encode_volume_id(value: object, *, name: str = "volume", method: str = "", template: str = "") -> str:
    """A volume id as the last path segment: each ``/``-separated part validated like a segment.

    Parts are joined with ``%2F``: pve-http-server decodes the whole path before splitting it
    (``uri_unescape`` in ``APIServer/AnyEvent.pm``), so PVE reads the same volume id, and no HTTP layer in
    between can treat the parts as path segments (``..`` is refused anyway). Empty parts are refused too,
    because PVE would silently drop them (``find_handler`` skips empty fragments).
    """
    if isinstance(value, str) and "/" in value:
        parts = value.split("/")
        if any(p == "" for p in parts):
            raise _refuse(method, template, name, "must not contain an empty '/'-separated part")
        if len(value) > MAX_SEGMENT_LEN:
            raise _refuse(method, template, name, f"must be at most {MAX_SEGMENT_LEN} characters")
        return "%2F".join(encode_segment(p, name=name, method=method, template=template) for p in parts)
    return encode_segment(value, name=name, method=method, template=template)


def build_path(method: str, template: str, params: Mapping[str, object] | None) -> str:
    """Fill a path template; every placeholder must be given exactly once, nothing extra."""
    names = template_params(template)
    given = dict(params or {})
    missing = [n for n in names if n not in given]
    if missing:
        raise _refuse(method, template, missing[0], "is required by the path but was not given")
    extra = sorted(set(given) - set(names))
    if extra:
        raise _refuse(method, template, extra[0], "is not a parameter of this path")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if takes_volume_id(template, name):
            return encode_volume_id(given[name], name=name, method=method, template=template)
        return encode_segment(given[name], name=name, method=method, template=template)

    return _PLACEHOLDER_RE.sub(fill, template)


def encode_value(value: object) -> str | list[str] | None:
    """One query/body value in PVE's wire form (``True`` -> ``"1"``), or ``None`` to drop it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            encoded = encode_value(item)
            if isinstance(encoded, list):
                raise TypeError("nested lists cannot be sent to Proxmox")
            if encoded is not None:
                out.append(encoded)
        return out
    raise TypeError(f"cannot send a {type(value).__name__} to Proxmox; use a string (property string)")


def encode_params(values: Mapping[str, object] | None, *, method: str = "", path: str = "") -> list[tuple[str, str]]:
    """Query string / form body items, booleans as 1/0, lists as repeated keys, ``None`` dropped."""
    items: list[tuple[str, str]] = []
    for key, value in (values or {}).items():
        try:
            encoded = encode_value(value)
        except TypeError as exc:
            raise PveError(
                kind="params",
                message="parameter refused before sending",
                errors={key: str(exc)},
                hint="nothing was sent.",
                method=method,
                path=path,
            ) from None
        if encoded is None:
            continue
        if isinstance(encoded, list):
            items.extend((key, v) for v in encoded)
        else:
            items.append((key, encoded))
    return items
