"""Which simulator handler serves which API operation, and what a handler receives.

Handlers register themselves with ``@route("GET", "/nodes/{node}/qemu")`` under the operation's key as it
appears in openapi.json. A handler that serves VMs and containers alike registers once with
``@guest_route("GET", "/nodes/{node}/{type}/{vmid}/snapshot")`` and reads :attr:`Call.guest_type`.
The HTTP path is matched by the spec (:mod:`pvemcp.dialect.model`); an operation the spec knows but no
handler serves is answered like PVE answers a missing handler (501, see ``app.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pvemcp.sim.auth import Identity
from pvemcp.sim.errors import PveHttpError, fail
from pvemcp.sim.state import GuestType

if TYPE_CHECKING:
    from pvemcp.sim.simulator import Simulator

Handler = Callable[["Call"], Any]

GUEST_TYPES: tuple[GuestType, ...] = ("qemu", "lxc")


@dataclass
class Call:
    """One API call as a handler sees it: validated, typed parameters and the caller's identity."""

    sim: Simulator
    ident: Identity
    method: str
    key: str
    params: dict[str, Any]
    total: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # typed accessors: parameters are already converted by the validator; these add defaults
    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return default if value is None else f"{value}"

    def req(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise PveHttpError(
                400, "Parameter verification failed.\n", {name: "property is missing and it is not optional"}
            )
        return f"{value}"

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise fail(f"invalid integer value for '{name}'") from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        return bool(int(value)) if f"{value}" in ("0", "1") else bool(value)

    @property
    def node(self) -> str:
        return self.req("node")

    @property
    def guest_type(self) -> GuestType:
        """``qemu`` or ``lxc``: the path segment after ``/nodes/{node}`` of the operation being served."""
        segment = self.key.split(" ", 1)[1].split("/")[3]
        for kind in GUEST_TYPES:
            if segment == kind:
                return kind
        raise RuntimeError(f"{self.key} is not a guest operation")

    @property
    def vmid(self) -> int:
        value = self.integer("vmid")
        assert value is not None
        return value


class PreEncoded:
    """A handler result whose JSON envelope is already encoded (and gzipped on first use).

    Hot listings (``/cluster/resources`` with thousands of guests) are cached by the handler for as
    long as the cluster state and the simulated second do not change; encoding them once per cache
    entry instead of once per request is what keeps 10,000-guest clusters fast.
    """

    __slots__ = ("_gz", "body", "data")

    def __init__(self, data: Any, body: bytes) -> None:
        self.data = data
        self.body = body
        self._gz: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gz is None:
            import gzip

            self._gz = gzip.compress(self.body, compresslevel=1, mtime=0)
        return self._gz


@dataclass(frozen=True)
class Route:
    """A handler and how the dispatcher must treat it."""

    key: str
    handler: Handler


ROUTES: dict[str, Route] = {}


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for the operation ``METHOD template`` (a key of openapi.json)."""
    key = f"{method.upper()} {template}"

    def deco(fn: Handler) -> Handler:
        if key in ROUTES:
            raise RuntimeError(f"two simulator handlers for {key}")
        ROUTES[key] = Route(key, fn)
        return fn

    return deco


def guest_route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` once for both guest types: ``{type}`` in ``template`` becomes ``qemu`` and ``lxc``.

    For the operations where qemu-server and pve-container answer alike, so the two keys share one handler
    (it tells them apart by :attr:`Call.guest_type`).
    """
    if "/{type}/" not in template:
        raise ValueError(f"{template} has no {{type}} segment")
    registrations = [route(method, template.replace("{type}", kind)) for kind in GUEST_TYPES]

    def deco(fn: Handler) -> Handler:
        for register in registrations:
            register(fn)
        return fn

    return deco
