"""``/healthz`` and ``/readyz`` for load balancers and orchestrators, beside the MCP endpoint.

They sit outside ``/mcp`` and its bearer auth on purpose: a probe carries no token, and neither
answer reveals anything but ``ok`` or which dependency is not ready (never a URL or a secret).

* ``/healthz`` — the process answers (liveness: restart me if this fails);
* ``/readyz`` — the catalog is loaded, the first cluster answers ``GET /version`` and the state
  store answers (readiness: send me traffic only if this passes). 503 with the failing checks otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from pvemcp.door._core import App

logger = logging.getLogger(__name__)

__all__ = ["HEALTHZ", "READYZ", "add_health_routes", "readiness"]

HEALTHZ = "/healthz"
READYZ = "/readyz"


async def readiness(app: App) -> dict[str, str]:
    """Each check's state: ``ok`` or a short reason (logged in full, never returned with details)."""
    checks: dict[str, str] = {}
    try:
        app.tools()
        checks["catalog"] = "ok"
    except Exception as exc:
        logger.warning("readyz: catalog not loaded: %s", exc)
        checks["catalog"] = "not loaded"
    try:
        client = await app.client()
        await client.request("GET", "/version")
        checks["cluster"] = "ok"
    except Exception as exc:
        logger.warning("readyz: cluster not reachable: %s", exc)
        checks["cluster"] = "unreachable"
    try:
        if app.state is None:
            raise RuntimeError("the App is not started")
        await app.state.ping()
        checks["state"] = "ok"
    except Exception as exc:
        logger.warning("readyz: state store not reachable: %s", exc)
        checks["state"] = "unreachable"
    return checks


def add_health_routes(starlette_app: Starlette, app: App) -> None:
    """Mount both probes on ``starlette_app`` (before its other routes, without auth)."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness(app)
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    starlette_app.router.routes[:0] = [
        Route(HEALTHZ, healthz, methods=["GET", "HEAD"]),
        Route(READYZ, readyz, methods=["GET", "HEAD"]),
    ]
