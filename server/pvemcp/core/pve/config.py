"""Client configuration: one validated, secret-safe description of how to reach one cluster.

Validation happens at construction so a misconfiguration fails at startup with a message that names
the field and the fix — never at the first tool call, and never with the secret in the message.  The
repr redacts every secret, so a config logged by accident or shown in a traceback leaks nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pvemcp.core.pve.fingerprint import normalize_fingerprint

DEFAULT_PORT = 8006
API_PREFIX = "/api2/json"

# user@realm!tokenid — tokenid and realm follow PVE's realm regex ([A-Za-z][A-Za-z0-9.\-_]+).
_TOKEN_ID_RE = re.compile(r"^[^\s@!:=/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$")
_USER_RE = re.compile(r"^[^\s@!:=/]+@[A-Za-z][A-Za-z0-9.\-_]+$")
_SECRET_OK_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no whitespace: safe in a header
# The variables ``ClientConfig.from_env`` reads, after its prefix (``PROXMOX_`` for pvemcp's own config).
# One list, so the README's table can be checked against what the code really reads.
ENV_SUFFIXES = (
    "URL",
    "TOKEN_ID",
    "TOKEN_SECRET",
    "TOKEN_SECRET_FILE",
    "USER",
    "PASSWORD",
    "PASSWORD_FILE",
    "FINGERPRINT",
    "CA_FILE",
    "INSECURE",
    "VERIFY_TLS",
    "MAX_CONCURRENCY",
    "READ_TIMEOUT",
    "MUTATE_TIMEOUT",
    "CONNECT_TIMEOUT",
)


class ConfigError(ValueError):
    """The client configuration is invalid; the message names the field and never contains a secret."""


@dataclass(frozen=True, repr=False)
class ClientConfig:
    """How to reach and authenticate against one Proxmox VE cluster.

    Authentication: either an API token (``token_id`` + ``token_secret`` or ``token_secret_file``) —
    recommended, no CSRF, no expiry handling — or ``user`` + ``password``/``password_file`` (ticket login).

    TLS: verified against the system trust store by default (``ca_file`` adds a CA bundle). PVE's
    self-signed certificate is best handled by ``fingerprint`` (SHA-256, as shown by the GUI under
    Node → System → Certificates): the pin then *replaces* CA/hostname verification and is checked
    before any request byte is sent.  ``insecure=True`` turns verification off entirely and is logged
    as a warning at every client start.

    Timeouts are per request class: ``read_timeout_s`` for GET, ``mutate_timeout_s`` for
    POST/PUT/DELETE (task-starting calls), ``connect_timeout_s`` for TCP+TLS setup.
    """

    url: str
    token_id: str | None = None
    token_secret: str | None = None
    token_secret_file: str | Path | None = None
    user: str | None = None
    password: str | None = None
    password_file: str | Path | None = None
    verify_tls: bool = True
    ca_file: str | Path | None = None
    fingerprint: str | None = None
    insecure: bool = False
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    mutate_timeout_s: float = 60.0
    max_concurrency: int = 8
    retries: int = 3
    retry_backoff_s: float = 0.2
    retry_backoff_max_s: float = 2.0
    retry_statuses: frozenset[int] = frozenset({502, 503, 504, 596, 597, 599})
    ticket_renew_after_s: float = 3600.0
    ticket_lifetime_s: float = 7200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _normalize_url(self.url))
        self._validate_auth()
        self._validate_tls()
        self._validate_numbers()

    # -- validation -------------------------------------------------------------------------------

    def _validate_auth(self) -> None:
        has_token = self.token_id is not None
        has_user = self.user is not None
        if has_token and has_user:
            raise ConfigError("set either token_id (API token) or user (password login), not both")
        if not has_token and not has_user:
            raise ConfigError("no credentials: set token_id + token_secret (recommended) or user + password")
        if has_token:
            assert self.token_id is not None
            if not _TOKEN_ID_RE.match(self.token_id):
                raise ConfigError("token_id must look like user@realm!tokenname, e.g. root@pam!mcp")
            secret = _resolve_secret("token_secret", self.token_secret, self.token_secret_file)
            object.__setattr__(self, "token_secret", secret)
            if self.password is not None or self.password_file is not None:
                raise ConfigError("password/password_file make no sense with token_id; remove them")
        else:
            assert self.user is not None
            if not _USER_RE.match(self.user):
                raise ConfigError("user must include the realm, e.g. root@pam or alice@pve")
            secret = _resolve_secret("password", self.password, self.password_file, header_safe=False)
            object.__setattr__(self, "password", secret)
            if self.token_secret is not None or self.token_secret_file is not None:
                raise ConfigError("token_secret/token_secret_file make no sense without token_id")

    def _validate_tls(self) -> None:
        if self.fingerprint is not None:
            try:
                object.__setattr__(self, "fingerprint", normalize_fingerprint(self.fingerprint))
            except ValueError as exc:
                raise ConfigError(f"fingerprint: {exc}") from None
        if self.insecure and self.fingerprint is not None:
            raise ConfigError("insecure and fingerprint contradict each other; keep the fingerprint")
        if self.insecure and self.ca_file is not None:
            raise ConfigError("insecure and ca_file contradict each other; keep the ca_file")
        if self.fingerprint is not None and self.ca_file is not None:
            raise ConfigError("set either fingerprint (pin one certificate) or ca_file (trust a CA), not both")
        if not self.verify_tls and not self.insecure:
            raise ConfigError(
                "verify_tls=False needs an explicit insecure=True; for PVE's self-signed certificate "
                "prefer fingerprint=<SHA-256 from the GUI>"
            )
        if self.insecure and self.verify_tls:
            # insecure is the explicit switch; normalise so there is one source of truth.
            object.__setattr__(self, "verify_tls", False)
        if self.ca_file is not None:
            path = Path(self.ca_file)
            if not path.is_file():
                raise ConfigError(f"ca_file {str(path)!r} does not exist or is not a file")

    def _validate_numbers(self) -> None:
        try:  # a TOML/JSON config gives a list; keep the config hashable and the type honest
            statuses = frozenset(int(s) for s in self.retry_statuses)
        except (TypeError, ValueError):
            raise ConfigError("retry_statuses must be a list of HTTP status codes") from None
        if any(not 500 <= s <= 599 for s in statuses):
            raise ConfigError("retry_statuses may only contain 5xx codes (4xx answers never change on retry)")
        object.__setattr__(self, "retry_statuses", statuses)
        for name in ("connect_timeout_s", "read_timeout_s", "mutate_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if (
            not isinstance(self.max_concurrency, int)
            or isinstance(self.max_concurrency, bool)
            or not 1 <= self.max_concurrency <= 256
        ):
            raise ConfigError("max_concurrency must be an integer between 1 and 256")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or not 1 <= self.retries <= 10:
            raise ConfigError("retries (attempts per request, including the first) must be between 1 and 10")
        if not self.retry_backoff_s >= 0 or not self.retry_backoff_max_s >= self.retry_backoff_s:
            raise ConfigError("retry_backoff_s must be >= 0 and <= retry_backoff_max_s")
        if not 0 < self.ticket_renew_after_s < self.ticket_lifetime_s:
            raise ConfigError("ticket_renew_after_s must be positive and below ticket_lifetime_s")

    # -- derived values -----------------------------------------------------------------------------

    @property
    def auth_mode(self) -> str:
        """``"token"`` or ``"ticket"``."""
        return "token" if self.token_id is not None else "ticket"

    @property
    def identity(self) -> str:
        """Who we authenticate as (token id or user) — safe to show, never a secret."""
        return self.token_id if self.token_id is not None else (self.user or "")

    @property
    def host_port(self) -> str:
        """``host:port`` of the API endpoint, for error messages."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port or DEFAULT_PORT}"

    def secrets(self) -> tuple[str, ...]:
        """All secret values, so error texts and logs can be scrubbed of them."""
        return tuple(s for s in (self.token_secret, self.password) if s)

    def __repr__(self) -> str:
        shown = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in ("token_secret", "password") and value is not None:
                value = "***"
            shown.append(f"{name}={value!r}")
        return f"ClientConfig({', '.join(shown)})"

    __str__ = __repr__

    # -- construction from the environment ------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "PVE_") -> ClientConfig:
        """Build a config from environment variables (``PVE_URL``, ``PVE_TOKEN_ID``, ...).

        Recognised (after ``prefix``): URL, TOKEN_ID, TOKEN_SECRET, TOKEN_SECRET_FILE, USER, PASSWORD,
        PASSWORD_FILE, FINGERPRINT, CA_FILE, INSECURE (1/true/yes), VERIFY_TLS (0/false/no),
        MAX_CONCURRENCY, READ_TIMEOUT, MUTATE_TIMEOUT, CONNECT_TIMEOUT.

        ``VERIFY_TLS=0`` and ``INSECURE=1`` mean the same: in a configuration file the two fields must
        agree (the dataclass guards against a half-edited file), but an environment variable that says
        "do not verify" *is* the explicit opt-out, and it is the name other Proxmox tools use. The
        client still logs the warning at every start, and ``pvemcp check`` shows "NOT VERIFIED".
        """
        src = os.environ if env is None else env

        def get(name: str) -> str | None:
            assert name in ENV_SUFFIXES, name
            value = src.get(prefix + name)
            return value if value not in (None, "") else None

        def flag(name: str, default: bool) -> bool:
            value = get(name)
            if value is None:
                return default
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{prefix}{name} must be a boolean (1/0, true/false)")

        def number(name: str, default: float) -> float:
            value = get(name)
            if value is None:
                return default
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{prefix}{name} must be a number") from None

        insecure = flag("INSECURE", False)
        verify_tls = flag("VERIFY_TLS", True)
        if get("INSECURE") is not None and get("VERIFY_TLS") is not None and insecure == verify_tls:
            raise ConfigError(f"{prefix}INSECURE and {prefix}VERIFY_TLS contradict each other; set only one")
        url = get("URL")
        if url is None:
            raise ConfigError(f"{prefix}URL is not set (e.g. https://pve.example:8006)")
        return cls(
            url=url,
            token_id=get("TOKEN_ID"),
            token_secret=get("TOKEN_SECRET"),
            token_secret_file=get("TOKEN_SECRET_FILE"),
            user=get("USER"),
            password=get("PASSWORD"),
            password_file=get("PASSWORD_FILE"),
            fingerprint=get("FINGERPRINT"),
            ca_file=get("CA_FILE"),
            insecure=insecure or not verify_tls,
            verify_tls=verify_tls and not insecure,
            max_concurrency=int(number("MAX_CONCURRENCY", 8)),
            connect_timeout_s=number("CONNECT_TIMEOUT", 10.0),
            read_timeout_s=number("READ_TIMEOUT", 30.0),
            mutate_timeout_s=number("MUTATE_TIMEOUT", 60.0),
        )


def _normalize_url(url: str) -> str:
    """Accept ``host``, ``https://host[:port]`` or the full ``.../api2/json`` and return the API base.

    Plain ``http`` is refused: the API token or password would cross the network in clear text, and
    pveproxy only serves HTTPS on 8006 anyway.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("url is empty; expected e.g. https://pve.example:8006")
    raw = url.strip()
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError("url is not a valid URL; expected e.g. https://pve.example:8006") from None
    if parts.scheme.lower() != "https":
        raise ConfigError("url must use https (Proxmox serves its API only over HTTPS, on port 8006)")
    if parts.username or parts.password:
        raise ConfigError("url must not contain credentials; use token_id/token_secret or user/password")
    if not parts.hostname:
        raise ConfigError("url has no host; expected e.g. https://pve.example:8006")
    if parts.query or parts.fragment:
        raise ConfigError("url must not have a query or fragment")
    path = parts.path.rstrip("/")
    if path not in ("", API_PREFIX):
        raise ConfigError(f"url path must be empty or {API_PREFIX}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port or DEFAULT_PORT}{API_PREFIX}"


def _resolve_secret(name: str, value: str | None, file: str | Path | None, *, header_safe: bool = True) -> str:
    """Return the secret from ``value`` or the first line of ``file``; errors never show the secret.

    Reading the file here (once, at startup) keeps blocking I/O off the event loop later.
    """
    if value is not None and file is not None:
        raise ConfigError(f"set either {name} or {name}_file, not both")
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}_file {str(path)!r} cannot be read ({exc.strerror})") from None
        lines = text.splitlines()
        value = lines[0].strip() if lines else ""
        if not value:
            raise ConfigError(f"{name}_file {str(path)!r} is empty")
    if value is None or value == "":
        raise ConfigError(f"{name} (or {name}_file) is required")
    if header_safe and not _SECRET_OK_RE.match(value):
        raise ConfigError(f"{name} contains whitespace or non-printable characters")
    if not header_safe and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"{name} contains control characters")
    return value
