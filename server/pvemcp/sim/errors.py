"""Exceptions that handlers raise; ``app.py`` turns them into PVE's wire responses.

They mirror what PVE's Perl code does: ``die "text\\n"`` is a 500 with that text,
``PVE::Exception`` carries a code (400/401/403/…) and for parameter errors a per-parameter hash.
Messages are stored exactly as PVE formats them, trailing newline included, because the 9.x body's
``message`` keeps it and the status line shows only the first line.
"""

from __future__ import annotations


class PveHttpError(Exception):
    """An error response: status, message (first line becomes the reason phrase), optional ``errors``.

    ``empty_body`` reproduces the auth layer's 401s and the proxy's 595, which carry no JSON at all.
    """

    def __init__(
        self,
        status: int,
        message: str,
        errors: dict[str, str] | None = None,
        *,
        empty_body: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.empty_body = empty_body


def fail(message: str) -> PveHttpError:
    """A plain ``die "message\\n"``: HTTP 500 with the text (newline added as PVE's code does)."""
    return PveHttpError(500, message if message.endswith("\n") else message + "\n")


def param_error(errors: dict[str, str]) -> PveHttpError:
    """``raise_param_exc``: 400 ``Parameter verification failed.`` with the per-parameter texts."""
    return PveHttpError(400, "Parameter verification failed.\n", errors)


def perm_error(detail: str) -> PveHttpError:
    """``raise_perm_exc``: 403 ``Permission check failed (<detail>)``."""
    return PveHttpError(403, f"Permission check failed ({detail})\n")


def auth_error(reason: str) -> PveHttpError:
    """401 from the auth layer: reason phrase only, empty body (``No ticket``, ``Authentication failed!``)."""
    return PveHttpError(401, reason, empty_body=True)


def not_implemented(method: str, path: str) -> PveHttpError:
    """501 for a path/method without handler (``rest_handler``'s default)."""
    return PveHttpError(501, f"Method '{method} {path}' not implemented")


class TaskError(Exception):
    """Raised inside a simulated worker: the task ends with ``TASK ERROR: <message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message.rstrip("\n")
