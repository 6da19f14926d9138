"""An HTTP/1.1 protocol for uvicorn that can write PVE's custom reason phrases and reset connections.

Why this exists: pveproxy puts the first line of every error message into the HTTP status line
(``HTTP/1.1 500 VM 100 not running``), and clients such as proxmoxer show that reason phrase. ASGI has no
field for a reason phrase — uvicorn's h11 protocol always writes the standard phrase of the status code
(and nothing at all for 595). The simulator's ASGI app therefore passes two private response headers,
which this protocol consumes before anything reaches the wire:

* ``x-pvesim-reason: <text>`` — becomes the reason phrase of the status line;
* ``x-pvesim-reset: 1`` — the connection is aborted with a TCP reset instead of answering (a fault).

Under any other ASGI server the headers would simply be visible; the simulator is only ever served through
:class:`PveH11Protocol` (see ``runner.py``), so clients never see them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol

REASON_HEADER = b"x-pvesim-reason"
RESET_HEADER = b"x-pvesim-reset"


class _PveConnection(h11.Connection):
    """h11 connection that rewrites the status line from the private headers of the response."""

    def __init__(self, protocol: PveH11Protocol, **kwargs: Any) -> None:
        super().__init__(h11.SERVER, **kwargs)
        self._protocol = protocol

    def send(self, event: h11.Event) -> bytes | None:  # type: ignore[override]
        if isinstance(event, h11.Response):
            reason: bytes | None = None
            reset = False
            kept: list[tuple[bytes, bytes]] = []
            for name, value in event.headers:
                if name == REASON_HEADER:
                    reason = value
                elif name == RESET_HEADER:
                    reset = True
                else:
                    kept.append((name, value))
            if reason is not None or reset:
                event = h11.Response(
                    status_code=event.status_code,
                    headers=kept,
                    reason=reason if reason is not None else event.reason,
                    http_version=event.http_version,
                )
            if reset:
                super().send(event)
                self._protocol.reset_connection()
                return b""
        return super().send(event)


class PveH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with :class:`_PveConnection` in place of the plain h11 connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size
        self.conn = _PveConnection(
            self, max_incomplete_event_size=size if size is not None else DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        )

    def reset_connection(self) -> None:
        """Abort the connection with RST (SO_LINGER 0), as a dying proxy or network would."""
        transport = getattr(self, "transport", None)
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
