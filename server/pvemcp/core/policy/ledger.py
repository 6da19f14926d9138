"""Append-only, HMAC-chained JSONL audit ledger of every mutating call, and its verifier.

Each line is one record, the canonical JSON (sorted keys, no spaces) of::

    {"v": 1, "seq": 7, "ts": "2025-01-01T12:00:00.000Z", "outcome": "succeeded",
     "call_id": "c-1a2b...", "plan_digest": "<hex>", "caller": "alice", "tool": "guest_stop",
     "risk": "destructive", "target": {...}, "args": {...redacted...}, "upid": "UPID:...",
     "error": "...", "reason": "...", "via": "elicitation", "details": {...},
     "prev": "<mac of record 6>", "mac": "<hex>"}

(absent values are omitted; ``call_id`` never is: a caller that gives none gets a fresh one).
``mac = HMAC-SHA256(key, canonical JSON of the record without "mac")`` and ``prev`` is the previous
record's ``mac`` (64 zeros for the first record, ``seq`` 1). Editing a record breaks its MAC;
deleting, inserting or reordering records breaks ``prev``/``seq`` links; without the key none of it
can be repaired. :func:`verify` reports each problem with its line and ``seq``.

A chain cannot show by itself the loss of its *last* records (a shorter chain is still a valid
chain), so the ledger keeps a **head anchor** outside the JSONL file: ``<ledger>.head`` holds the
last record's ``seq`` and ``mac`` under its own HMAC, rewritten atomically (temporary file, then
rename) after every append while the append lock is held. :func:`verify` checks the ledger against
it: records dropped from the end, or a ledger emptied or removed while the anchor remains, are
reported. Rolling back the ledger *and* the anchor together to an earlier consistent state is only
caught against a head the operator pinned elsewhere (``pvemcp audit head`` prints it,
``pvemcp audit verify --expect-head SEQ:MAC`` checks it). The writer refuses to start on a ledger
that is behind its anchor, so a truncation is never papered over by new appends.

Outcomes (one vocabulary for the door, the CLI and the reader):

* decision records — ``allowed`` (policy allows, no confirmation needed), ``confirmed`` (needed
  confirmation and got it; ``via`` says ``elicitation`` or ``token``), ``pending`` (confirmation
  required, the question is being asked, nothing sent), ``previewed`` (a preview and a confirmation
  token were returned, nothing sent), ``declined`` (the user declined or cancelled, nothing sent),
  ``denied`` (policy, read-only, scope or a refused token; nothing sent), ``dry_run`` (the exact
  requests were returned, nothing sent), ``expired`` (the confirmation was not answered in time,
  nothing sent), ``plan_changed`` (the plan differed from the confirmed one just before sending,
  nothing sent);
* result records — ``succeeded`` / ``failed`` (with ``upid`` and ``error``), written after a call
  that was allowed or confirmed. Every record of one call shares its ``call_id``; records about a
  plan carry its ``plan_digest``, so the confirmed plan and the plan sent can be matched.

Arguments, targets, details, errors and reasons go through :func:`~pvemcp.core.policy.redact.redact`
first: secrets are never written.

Writing: the file is opened with ``O_APPEND`` and each record is **one** ``os.write`` of one line,
so a line is never interleaved with another. :meth:`AuditLedger.append` is synchronous on purpose:
the write is a few hundred bytes to a local file plus the anchor's replacement (a few hundred
microseconds in all, no network, against the milliseconds of the Proxmox request it records), it
never awaits, and so it is atomic with respect to the event loop; a ``threading.Lock`` and an ``flock`` serialise it
across threads and processes (another process appending is noticed by the file size and the chain
continues from the real tail). ``fsync=True`` adds durability against power loss at the price of a
blocking flush per record.

The key is a file of 64 hex characters created with mode ``0600`` on first use (default
``<ledger>.key`` beside the ledger). A key file readable by group or others is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from pvemcp.core.policy._canonical import canonical_bytes, canonical_json
from pvemcp.core.policy.redact import redact, redact_text
from pvemcp.core.policy.risk_class import Risk

try:  # POSIX only; without it, appends are still serialised within the process.
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from pvemcp.core.policy.config import PolicyConfig

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "AuditLedger",
    "HeadAnchor",
    "LedgerError",
    "LedgerIssue",
    "Outcome",
    "VerifyReport",
    "default_head_path",
    "default_key_path",
    "load_key",
    "load_or_create_key",
    "new_call_id",
    "open_problem",
    "parse_head",
    "reanchor",
    "verify",
]

FORMAT_VERSION = 1
GENESIS = "0" * 64
MAX_VALUE_CHARS = 2000
_REQUIRED = ("v", "seq", "ts", "outcome", "prev", "mac")


class Outcome(StrEnum):
    """What happened to a mutating call (see module docstring)."""

    ALLOWED = "allowed"
    CONFIRMED = "confirmed"
    PENDING = "pending"
    DECLINED = "declined"
    DENIED = "denied"
    DRY_RUN = "dry_run"
    PREVIEWED = "previewed"
    EXPIRED = "expired"
    PLAN_CHANGED = "plan_changed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LedgerError(ValueError):
    """The ledger or its key cannot be used; the message says which file and what to do.

    A ``ValueError`` like the other configuration errors, so that a start with an unusable ledger
    ends with this message and exit code 2, not a traceback.
    """


def new_call_id() -> str:
    """A fresh id tying a call's decision record to its result record."""
    return "c-" + uuid.uuid4().hex[:16]


def default_key_path(ledger: str | os.PathLike[str]) -> Path:
    """``<ledger>.key``, beside the ledger."""
    p = Path(ledger)
    return p.with_name(p.name + ".key")


def default_head_path(ledger: str | os.PathLike[str]) -> Path:
    """``<ledger>.head``, beside the ledger: the head anchor (see module docstring)."""
    p = Path(ledger)
    return p.with_name(p.name + ".head")


def _ensure_directory(ledger: Path) -> None:
    """Create the ledger's directory (mode 0700) if missing; a :class:`LedgerError` says what to do if not.

    A fresh host has no ``/var/log/pvemcp``: the first start creates it rather than failing.
    """
    parent = ledger.parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(_no_directory(ledger, str(exc.strerror or exc))) from None


def _no_directory(ledger: Path, why: str) -> str:
    parent = ledger.parent
    return (
        f"cannot create the directory {parent} of the audit log {ledger}: {why}; "
        f"create it (e.g. `install -d -m 700 {parent}` as root, owned by the user running pvemcp) "
        "or set audit_log / PVEMCP_AUDIT_LOG to a writable path"
    )


def open_problem(ledger: str | os.PathLike[str], key_file: str | os.PathLike[str] | None = None) -> str | None:
    """Why :class:`AuditLedger` would refuse to open ``ledger``, found without creating or changing anything.

    ``None`` when it would open (a missing directory that can be created is fine). For ``pvemcp check``.
    """
    p = Path(ledger)
    parent = p.parent
    if not parent.is_dir():
        ancestor = next((a for a in (parent, *parent.parents) if a.exists()), None)
        if ancestor is None or not ancestor.is_dir():
            return _no_directory(p, f"{ancestor or parent} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return _no_directory(p, f"{ancestor} is not writable")
        return None
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create the audit log {p}: {parent} is not writable; fix its owner or set PVEMCP_AUDIT_LOG"
    if p.exists() and (not p.is_file() or not os.access(p, os.W_OK)):
        return f"the audit log {p} is not a writable file"
    key_path = Path(key_file) if key_file is not None else default_key_path(p)
    if not key_path.exists():
        if p.exists() and p.stat().st_size > 0:
            return f"key file {key_path} does not exist, but the ledger {p} has records written with a key"
        return None
    try:
        _check_private(key_path)
        key = load_key(key_path)
        if p.exists():
            seq, head, _ = _read_tail(p, key)
            _reconcile_anchor(p, default_head_path(p), key, seq, head)
        elif _read_anchor(default_head_path(p), key) not in (None, HeadAnchor(0, GENESIS)):
            return f"the audit log {p} does not exist but its head anchor records entries: it was removed"
    except LedgerError as exc:
        return str(exc)
    return None


# -- key ---------------------------------------------------------------------------------------


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read an existing key file (hex); raises :class:`LedgerError` if missing or malformed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise LedgerError(f"key file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"key file {p} cannot be read: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise LedgerError(f"key file {p} does not contain a hex key") from None
    if len(key) < 16:
        raise LedgerError(f"key file {p} holds a key of {len(key)} bytes; at least 16 are required")
    return key


def _check_private(p: Path) -> None:
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        raise LedgerError(f"key file {p} is accessible by group or others (mode {mode:04o}); run: chmod 600 {p}")


def load_or_create_key(path: str | os.PathLike[str]) -> bytes:
    """Load the key, creating it (32 random bytes, mode 0600) if it does not exist yet.

    Creation is atomic: the key is written to a private temporary file which is then hard-linked
    into place, so two processes starting together end up with the same key, and nobody ever sees
    an empty or half-written key file.
    """
    p = Path(path)
    if not p.exists():
        if not p.parent.is_dir():
            raise LedgerError(f"cannot create key file {p}: directory {p.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=".pvemcp-key-", dir=p.parent)  # mkstemp creates it 0600
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_bytes(32).hex() + "\n").encode("ascii"))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            with contextlib.suppress(FileExistsError):
                os.link(tmp, p)
        finally:
            if fd != -1:
                os.close(fd)
            os.unlink(tmp)
    _check_private(p)
    return load_key(p)


def _mac(key: bytes, record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "mac"}
    return hmac.new(key, canonical_bytes(body), hashlib.sha256).hexdigest()


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- head anchor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadAnchor:
    """The last record's ``seq`` and ``mac`` as the writer last saw them (``seq`` 0: empty ledger)."""

    seq: int
    head: str

    def text(self) -> str:
        """``SEQ:MAC``, the form ``pvemcp audit head`` prints and ``--expect-head`` takes."""
        return f"{self.seq}:{self.head}"


def parse_head(text: str) -> HeadAnchor:
    """Parse ``SEQ:MAC`` (the MAC may be shortened to a prefix of at least 16 hex digits)."""
    seq_text, sep, mac = text.strip().partition(":")
    mac = mac.strip().lower()
    if (
        not sep
        or not seq_text.strip().isdigit()
        or not 16 <= len(mac) <= 64
        or any(c not in "0123456789abcdef" for c in mac)
    ):
        raise LedgerError(f"expected head {text!r} is not SEQ:MAC (e.g. 42:3f9a…, at least 16 hex digits)")
    return HeadAnchor(int(seq_text), mac)


def _anchor_mac(key: bytes, seq: int, head: str) -> str:
    # "anchor" is a key no record has, so an anchor's MAC can never pass for a record's.
    return hmac.new(key, canonical_bytes({"anchor": "head", "seq": seq, "head": head}), hashlib.sha256).hexdigest()


def anchor_text(key: bytes, anchor: HeadAnchor) -> str:
    """The anchor document (one line of canonical JSON) that holds ``anchor`` under its own MAC."""
    doc = {
        "v": FORMAT_VERSION,
        "seq": anchor.seq,
        "head": anchor.head,
        "mac": _anchor_mac(key, anchor.seq, anchor.head),
    }
    return canonical_json(doc) + "\n"


def parse_anchor_text(raw: str | bytes, key: bytes, where: str) -> HeadAnchor:
    """The anchor in an anchor document; :class:`LedgerError` (naming ``where``) if it is not valid."""
    try:
        doc = json.loads(raw)
        seq, head, mac = doc["seq"], doc["head"], doc["mac"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(head, str) or not isinstance(mac, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise LedgerError(f"head anchor {where} is not an anchor file (edited or replaced)") from None
    if not hmac.compare_digest(mac, _anchor_mac(key, seq, head)):
        raise LedgerError(f"head anchor {where} does not verify with this key (edited, or written with another key)")
    return HeadAnchor(seq, head)


def _read_anchor(path: Path, key: bytes) -> HeadAnchor | None:
    """The anchor in ``path``, ``None`` if the file does not exist; :class:`LedgerError` if it is not valid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"head anchor {path} cannot be read: {exc.strerror or exc}") from None
    return parse_anchor_text(raw, key, str(path))


def _write_anchor(path: Path, key: bytes, anchor: HeadAnchor, *, fsync: bool = False) -> None:
    """Replace the anchor atomically: readers see the old or the new one, never a partial file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # created 0600
    try:
        os.write(fd, anchor_text(key, anchor).encode("ascii"))
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError as exc:
        raise LedgerError(f"cannot write head anchor {path}: {exc.strerror or exc}") from None
    finally:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _reconcile_anchor(ledger: Path, anchor_path: Path, key: bytes, seq: int, head: str) -> HeadAnchor | None:
    """Check the ledger's tail against its anchor when a writer opens it; the anchor to (re)write, if any.

    Refuses (:class:`LedgerError`) a ledger that is behind its anchor or disagrees with it: appending
    would hide the loss. An anchor behind the ledger is what an append interrupted between its two
    writes leaves; the records after it carry valid MACs, so the anchor is brought forward.
    """
    see = f"run `pvemcp audit verify {ledger}`"
    anchor = _read_anchor(anchor_path, key)
    if anchor is None:
        if seq == 0:
            return HeadAnchor(0, GENESIS)
        raise LedgerError(
            f"ledger {ledger} has records up to seq {seq} but its head anchor {anchor_path} is missing (deleted, "
            f"or written by an older pvemcp); {see}, then `pvemcp audit head --reanchor {ledger}` if it is intact"
        )
    if anchor.seq > seq:
        raise LedgerError(
            f"ledger {ledger} ends at seq {seq} but its head anchor records seq {anchor.seq}: records were removed; "
            f"{see} and move the ledger aside before writing again"
        )
    if anchor.seq == seq and anchor.head != head:
        raise LedgerError(f"ledger {ledger}: the last record (seq {seq}) is not the one its head anchor records; {see}")
    return HeadAnchor(seq, head) if anchor.seq < seq else None


# -- writer ------------------------------------------------------------------------------------


def _read_tail(path: Path, key: bytes) -> tuple[int, str, int]:
    """(last seq, last mac, file size) of an existing ledger, after checking its last record."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0, GENESIS, 0
        block = 4096
        pos = size
        buf = b""
        while pos > 0 and buf.count(b"\n") < 2:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
    if not buf.endswith(b"\n"):
        raise LedgerError(
            f"ledger {path} ends with an incomplete line (a crash or truncation); "
            f"run `pvemcp audit verify {path}` and move the file aside before writing again"
        )
    last = buf[:-1].rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(last)
        seq, mac = int(record["seq"]), str(record["mac"])
    except (ValueError, KeyError, TypeError):
        raise LedgerError(
            f"ledger {path}: the last line is not a ledger record; run `pvemcp audit verify {path}`"
        ) from None
    if not hmac.compare_digest(mac, _mac(key, record)):
        raise LedgerError(
            f"ledger {path}: the last record does not verify with this key (wrong key file, or tampering); "
            f"run `pvemcp audit verify {path}`"
        )
    return seq, mac, size


class RecordArgs(TypedDict, total=False):
    """The keyword arguments of :func:`record_fields`, so :meth:`AuditLedger.append` takes the same ones."""

    tool: Required[str]
    caller: str | None
    risk: Risk | str | None
    target: Any
    args: Mapping[str, Any] | None
    upid: str | None
    error: str | None
    reason: str | None
    call_id: str | None
    plan_digest: str | None
    via: str | None
    details: Mapping[str, Any] | None


def record_fields(
    outcome: Outcome | str,
    *,
    tool: str,
    caller: str | None = None,
    risk: Risk | str | None = None,
    target: Any = None,
    args: Mapping[str, Any] | None = None,
    upid: str | None = None,
    error: str | None = None,
    reason: str | None = None,
    call_id: str | None = None,
    plan_digest: str | None = None,
    via: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A record's content before chaining (no ``seq``/``ts``/``prev``/``mac``), secrets redacted.

    One function for every writer (this file's and a shared database's), so the record format is one.
    """
    kind = Outcome(outcome)
    fields: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "outcome": kind.value,
        "tool": tool,
        "caller": caller,
        "risk": Risk(risk).value if risk is not None else None,  # an unknown word is refused, like an outcome
        "call_id": call_id or new_call_id(),
        "plan_digest": plan_digest,
        "via": via,
        "upid": upid,
        "target": redact(target, max_chars=MAX_VALUE_CHARS) if target is not None else None,
        "args": redact(args, max_chars=MAX_VALUE_CHARS) if args is not None else None,
        "details": redact(details, max_chars=MAX_VALUE_CHARS) if details is not None else None,
        "error": redact_text(error)[:MAX_VALUE_CHARS] if error is not None else None,
        "reason": redact_text(reason)[:MAX_VALUE_CHARS] if reason is not None else None,
    }
    record = {k: v for k, v in fields.items() if v is not None}
    return record


def seal_record(key: bytes, record: dict[str, Any], *, seq: int, prev: str, ts: float) -> dict[str, Any]:
    """Chain ``record`` after ``prev`` as number ``seq``: adds ``seq``, ``ts``, ``prev`` and its ``mac``."""
    record["seq"] = seq
    record["ts"] = _utc(ts)
    record["prev"] = prev
    record["mac"] = _mac(key, record)
    return record


class AuditLedger:
    """Appends chained records to one ledger file (see module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key_file: str | os.PathLike[str] | None = None,
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        _ensure_directory(self.path)
        self.head_file = default_head_path(self.path)
        self.key_file = Path(key_file) if key_file is not None else default_key_path(self.path)
        self._key = key if key is not None else load_or_create_key(self.key_file)
        self._clock = clock
        self._fsync = fsync
        self._lock = threading.Lock()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc.strerror or exc}") from None
        try:
            with self._locked():
                self._seq, self._head, self._size = _read_tail(self.path, self._key)
                anchor = _reconcile_anchor(self.path, self.head_file, self._key, self._seq, self._head)
                if anchor is not None:
                    _write_anchor(self.head_file, self._key, anchor, fsync=fsync)
        except BaseException:
            os.close(self._fd)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes (``flock``) for one read-modify-write of the ledger and its anchor."""
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @classmethod
    def from_config(cls, config: PolicyConfig) -> AuditLedger | None:
        """The ledger the policy configures, or ``None`` when ``audit_log`` is not set."""
        if config.audit_log is None:
            return None
        return cls(config.audit_log, key_file=config.audit_key_path)

    @property
    def last_seq(self) -> int:
        """``seq`` of the last record written (0 for an empty ledger)."""
        return self._seq

    @property
    def head(self) -> str:
        """MAC of the last record (the chain's head), or :data:`GENESIS` for an empty ledger."""
        return self._head

    def append(
        self, outcome: Outcome | str, *, call: str | None = None, **fields: Unpack[RecordArgs]
    ) -> dict[str, Any]:
        """Write one record and return it as written. Raises :class:`LedgerError` if it could not be.

        ``call_id`` ties the records of one call together (a fresh id when none is given; ``call`` is
        its older name); ``plan_digest`` names the plan the record is about. The door should treat a
        failure to write as a reason not to send the request (fail closed).
        """
        fields["call_id"] = fields.get("call_id") or call
        record = record_fields(outcome, **fields)
        with self._lock:
            if self._fd < 0:
                raise LedgerError(f"ledger {self.path} is closed")
            with self._locked():
                size = os.fstat(self._fd).st_size
                if size != self._size:  # another writer appended since our last write (or the file was cut)
                    self._seq, self._head, self._size = _read_tail(self.path, self._key)
                    _reconcile_anchor(self.path, self.head_file, self._key, self._seq, self._head)
                    size = self._size
                seal_record(self._key, record, seq=self._seq + 1, prev=self._head, ts=self._clock())
                data = (canonical_json(record) + "\n").encode("utf-8")
                written = os.write(self._fd, data)
                if written != len(data):
                    raise LedgerError(f"ledger {self.path}: short write ({written} of {len(data)} bytes)")
                if self._fsync:
                    os.fsync(self._fd)
                self._seq, self._head, self._size = record["seq"], record["mac"], size + written
                _write_anchor(self.head_file, self._key, HeadAnchor(self._seq, self._head), fsync=self._fsync)
        return record

    async def append_async(self, outcome: Outcome | str, **fields: Any) -> dict[str, Any]:
        """:meth:`append` behind the interface a shared ledger has too (a local write never awaits)."""
        return self.append(outcome, **fields)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- verifier ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerIssue:
    """One problem found by :func:`verify`: where (line, seq) and what."""

    line: int
    seq: int | None
    kind: str
    message: str


@dataclass
class VerifyReport:
    """Result of :func:`verify`. ``intact`` is true only when no issue was found."""

    path: Path | str
    """The ledger file, or the database (password hidden) a shared ledger was read from."""
    records: int = 0
    last_seq: int = 0
    head: str = GENESIS
    issues: list[LedgerIssue] = field(default_factory=list)
    anchor: HeadAnchor | None = None
    """The head anchor read beside the ledger (``None`` when there is none or it is unusable)."""
    notes: list[str] = field(default_factory=list)
    """What was checked besides the chain, and harmless findings (an anchor one append behind)."""

    @property
    def intact(self) -> bool:
        return not self.issues

    def format(self, max_issues: int = 50) -> str:
        """A report for people: one summary line, then one line per problem, then the notes."""
        if self.intact:
            lines = [
                f"OK: {self.path}: {self.records} record(s), chain intact; last seq {self.last_seq}, "
                f"head {self.head[:16]}"
            ]
        else:
            lines = [f"TAMPERED: {self.path}: {len(self.issues)} problem(s) in {self.records} record(s)"]
            lines.extend(f"  {issue.message}" for issue in self.issues[:max_issues])
            if len(self.issues) > max_issues:
                lines.append(f"  ... and {len(self.issues) - max_issues} more")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass
class _Rec:
    line: int
    seq: int
    prev: str
    mac: str
    mac_ok: bool


def _where(r: _Rec) -> str:
    return f"line {r.line} (seq {r.seq})"


def _out_of_order(r: _Rec, origin: _Rec) -> LedgerIssue:
    """``r`` links to ``origin`` but does not stand right after it (a moved record).

    One wording whether the record turns up at the head of the ledger or in the middle of the chain.
    """
    return LedgerIssue(
        r.line, r.seq, "reordered", f"{_where(r)}: out of order, it belongs after line {origin.line} (seq {origin.seq})"
    )


def verify(
    path: str | os.PathLike[str],
    key: bytes,
    *,
    head_file: str | os.PathLike[str] | None = None,
    expect_head: HeadAnchor | None = None,
) -> VerifyReport:
    """Check every record's MAC, the chain, and the chain's end against the head anchor and a pinned head.

    Reports every edit, deletion, insertion or reordering, and — through the anchor
    (``head_file``, default ``<ledger>.head``) — records dropped from the end and a ledger emptied or
    removed. ``expect_head`` is a head the operator kept elsewhere (``pvemcp audit head``): the
    ledger must still hold that record. Raises :class:`LedgerError` only when neither the ledger nor
    its anchor can be read.
    """
    p = Path(path)
    anchor_path = Path(head_file) if head_file is not None else default_head_path(p)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        if not anchor_path.exists():
            raise LedgerError(f"cannot read ledger {p}: it does not exist (and neither does {anchor_path})") from None
        data = None
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {p}: {exc.strerror or exc}") from None
    report = VerifyReport(path=p)
    if data is None:
        report.issues = _check_ends([], 0, key, anchor_path, expect_head, report, missing=True)
        return report
    issues: list[LedgerIssue] = []
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    if complete:
        lines = lines[:-1]

    recs: list[_Rec] = []
    for i, raw in enumerate(lines, start=1):
        if not complete and i == len(lines):
            issues.append(
                LedgerIssue(
                    i,
                    None,
                    "truncated",
                    f"line {i}: incomplete last line (the file was cut or a write was interrupted)",
                )
            )
            continue
        if not raw.strip():
            issues.append(LedgerIssue(i, None, "blank", f"line {i}: blank line inserted"))
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or any(k not in record for k in _REQUIRED):
                raise ValueError("not a ledger record")
            seq, prev, mac = record["seq"], record["prev"], record["mac"]
            if (
                not isinstance(seq, int)
                or isinstance(seq, bool)
                or not isinstance(prev, str)
                or not isinstance(mac, str)
            ):
                raise ValueError("bad field types")
        except (ValueError, UnicodeDecodeError):
            issues.append(LedgerIssue(i, None, "unparseable", f"line {i}: not a ledger record (edited or inserted)"))
            continue
        mac_ok = hmac.compare_digest(mac, _mac(key, record))
        if mac_ok and canonical_json(record).encode("utf-8") != raw:
            issues.append(
                LedgerIssue(
                    i,
                    seq,
                    "reformatted",
                    f"line {i} (seq {seq}): the line was rewritten (content intact, bytes changed)",
                )
            )
        recs.append(_Rec(i, seq, prev, mac, mac_ok))

    chain_issues, inserted = _check_chain(recs)
    mac_bad = [r for r in recs if not r.mac_ok and r.line not in inserted]
    if recs and len(mac_bad) == len(recs) and not inserted:
        issues.append(
            LedgerIssue(
                0,
                None,
                "key",
                f"every record ({len(recs)}) fails MAC verification: wrong key, or every record was altered",
            )
        )
    else:
        for r in mac_bad:
            issues.append(
                LedgerIssue(
                    r.line, r.seq, "modified", f"{_where(r)}: record altered (its MAC does not match its content)"
                )
            )
    issues.extend(chain_issues)
    issues.extend(_check_ends(recs, len(lines), key, anchor_path, expect_head, report, missing=False))
    issues.sort(key=lambda x: (x.line, x.kind))

    report.issues = issues
    report.records = len(recs)
    if recs:
        report.last_seq, report.head = recs[-1].seq, recs[-1].mac
    return report


def _check_ends(
    recs: list[_Rec],
    lines: int,
    key: bytes,
    anchor_path: Path,
    expect_head: HeadAnchor | None,
    report: VerifyReport,
    *,
    missing: bool,
) -> list[LedgerIssue]:
    """Where the chain ends, against the head anchor and the pinned head (see :func:`verify`)."""
    issues: list[LedgerIssue] = []
    try:
        anchor = _read_anchor(anchor_path, key)
    except LedgerError as exc:
        issues.append(LedgerIssue(lines + 1, None, "anchor", f"{exc}: cannot tell whether the last records are intact"))
        anchor = None
    else:
        if anchor is None and recs:
            issues.append(
                LedgerIssue(
                    lines + 1,
                    None,
                    "anchor",
                    f"head anchor {anchor_path} is missing (deleted, or the ledger was written by an older pvemcp): "
                    "records dropped from the end cannot be ruled out",
                )
            )
    report.anchor = anchor
    if anchor is not None:
        issues.extend(
            _check_head(recs, lines, anchor, f"its head anchor {anchor_path.name}", "anchor", report, missing)
        )
    if expect_head is not None:
        issues.extend(_check_head(recs, lines, expect_head, "the expected head", "pinned", report, missing))
    return issues


def _check_head(
    recs: list[_Rec],
    lines: int,
    head: HeadAnchor,
    source: str,
    kind: str,
    report: VerifyReport,
    missing: bool,
) -> list[LedgerIssue]:
    """The record ``head`` names must be in the ledger; say how it is not (removed tail, wiped, rewritten)."""
    if head.seq == 0:
        report.notes.append(f"{source} records an empty ledger")
        return []
    valid = [r for r in recs if r.mac_ok]
    if any(r.seq == head.seq and r.mac.startswith(head.head) for r in valid):
        after = sum(1 for r in valid if r.seq > head.seq)
        if after and kind == "anchor":
            report.notes.append(
                f"{after} record(s) after {source} (seq {head.seq}): an append was interrupted before the anchor "
                "was updated; the next start brings it forward"
            )
        else:
            report.notes.append(f"{source} (seq {head.seq}) matches")
        return []
    says = f"{source} records seq {head.seq}"
    if not valid:
        state = "does not exist" if missing else "is empty" if not recs else "has no valid record"
        return [LedgerIssue(0, None, "wiped", f"the ledger {state} but {says}: all {head.seq} record(s) were removed")]
    last = max(valid, key=lambda r: r.seq)
    if last.seq < head.seq:
        gap = head.seq - last.seq
        span = f"seq {last.seq + 1}" + ("" if gap == 1 else f"..{head.seq}")
        return [
            LedgerIssue(
                lines + 1,
                None,
                "deleted",
                f"after {_where(last)}, the last line: {gap} record(s) missing at the end ({span} deleted); {says}",
            )
        ]
    same = next((r for r in valid if r.seq == head.seq), None)
    if same is not None:
        return [
            LedgerIssue(
                same.line,
                same.seq,
                kind,
                f"{_where(same)}: not the record {source} names (MAC {head.head[:16]}…): the ledger was rewritten "
                "or replaced from here or earlier",
            )
        ]
    return [LedgerIssue(lines + 1, head.seq, kind, f"{says}, which is not in the ledger (see the deletions above)")]


def _check_chain(recs: list[_Rec]) -> tuple[list[LedgerIssue], set[int]]:
    """Link and sequence problems, and the lines found to be insertions (see :func:`verify`)."""
    issues: list[LedgerIssue] = []
    inserted: set[int] = set()
    by_mac: dict[str, _Rec] = {}
    for r in recs:
        by_mac.setdefault(r.mac, r)

    chain: list[_Rec] = []  # the records accepted as the chain so far (duplicates and insertions left out)
    for r in recs:
        first = by_mac[r.mac]
        if first is not r:
            issues.append(
                LedgerIssue(r.line, r.seq, "duplicate", f"{_where(r)}: duplicate of line {first.line} (inserted copy)")
            )
            continue
        if not chain:
            if r.prev != GENESIS or r.seq != 1:
                origin = by_mac.get(r.prev)
                if origin is not None:
                    issues.append(_out_of_order(r, origin))
                elif r.seq > 1:
                    issues.append(
                        LedgerIssue(
                            r.line,
                            r.seq,
                            "deleted",
                            f"{_where(r)}: {r.seq - 1} record(s) missing before the first line "
                            f"(seq 1..{r.seq - 1} deleted)",
                        )
                    )
                else:
                    issues.append(
                        LedgerIssue(r.line, r.seq, "chain", f"{_where(r)}: the first record does not start the chain")
                    )
            chain.append(r)
            continue
        last = chain[-1]
        if r.prev == last.mac and r.seq == last.seq + 1:
            chain.append(r)
            continue
        before = chain[-2] if len(chain) >= 2 else None
        origin = by_mac.get(r.prev)
        if before is not None and r.prev == before.mac and not last.mac_ok and r.seq == before.seq + 1:
            # The previous line is not in the chain at all: its successor links past it.
            inserted.add(last.line)
            issues = [i for i in issues if i.line != last.line]
            issues.append(
                LedgerIssue(last.line, last.seq, "inserted", f"{_where(last)}: not part of the chain (inserted record)")
            )
            chain[-1] = r
        elif r.prev == GENESIS:
            issues.append(
                LedgerIssue(
                    r.line,
                    r.seq,
                    "reordered" if r.seq == 1 else "chain",
                    f"{_where(r)}: a chain's first record in the middle of the ledger "
                    "(records reordered, or another ledger spliced in)",
                )
            )
            chain.append(r)
        elif origin is not None and origin is not r:
            issues.append(_out_of_order(r, origin))
            chain.append(r)
        elif r.seq > last.seq + 1:
            gap = r.seq - last.seq - 1
            issues.append(
                LedgerIssue(
                    r.line,
                    r.seq,
                    "deleted",
                    f"{_where(r)}: {gap} record(s) missing after {_where(last)} "
                    f"(seq {last.seq + 1}{'' if gap == 1 else '..' + str(r.seq - 1)} deleted)",
                )
            )
            chain.append(r)
        else:
            why = (
                "that record was altered (its MAC was replaced)"
                if not last.mac_ok
                else "the record it follows is missing"
            )
            issues.append(LedgerIssue(r.line, r.seq, "chain", f"{_where(r)}: does not link to {_where(last)}: {why}"))
            chain.append(r)
    return issues, inserted


# -- CLI ---------------------------------------------------------------------------------------


def reanchor(ledger: Path, key: bytes) -> None:
    """Rewrite the head anchor from the ledger, whose chain must be intact apart from its end."""
    if not ledger.is_file():
        raise LedgerError(
            f"ledger {ledger} does not exist: nothing to re-anchor (to start a new ledger, move its "
            f"anchor {default_head_path(ledger)} aside)"
        )
    with open(ledger, "rb") as held:  # hold the writers' lock: a running server cannot append meanwhile
        if fcntl is not None:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        report = verify(ledger, key, head_file=ledger.with_name(ledger.name + ".no-anchor"))
        broken = [i for i in report.issues if i.kind not in ("anchor", "deleted", "wiped") or i.seq is not None]
        if broken:
            raise LedgerError(f"the chain of {ledger} is broken; not re-anchoring:\n{report.format()}")
        _write_anchor(default_head_path(ledger), key, HeadAnchor(report.last_seq, report.head))
