"""Append-only, HMAC-chained JSONL audit ledger of every mutating call, and its verifier.

Each line is one record, the canonical JSON (sorted keys, no spaces) of::

    {"v": 1, "seq": 7, "ts": "2025-01-01T12:00:00.000Z", "outcome": "succeeded",
     "call": "c-1a2b...", "caller": "alice", "tool": "guest_stop", "risk": "destructive",
     "target": {...}, "args": {...redacted...}, "upid": "UPID:...", "error": "...", "reason": "...",
     "via": "elicitation", "details": {...}, "prev": "<mac of record 6>", "mac": "<hex>"}

(absent values are omitted). ``mac = HMAC-SHA256(key, canonical JSON of the record without "mac")``
and ``prev`` is the previous record's ``mac`` (64 zeros for the first record, ``seq`` 1). Editing a
record breaks its MAC; deleting, inserting or reordering records breaks ``prev``/``seq`` links;
without the key none of it can be repaired. :func:`verify` reports each problem with its line and
``seq``. What a chain cannot show by itself is the loss of its *last* records (a shorter chain is
still a valid chain): compare ``last_seq``/``head`` of the report with an external copy if that
matters.

Outcomes (one vocabulary for the door, the CLI and the reader):

* decision records — ``allowed`` (policy allows, no confirmation needed), ``confirmed`` (needed
  confirmation and got it; ``via`` says ``elicitation`` or ``token``), ``pending`` (confirmation
  required: a preview/token was returned, nothing sent), ``declined`` (the user declined or
  cancelled, nothing sent), ``denied`` (policy, read-only, scope or a refused token; nothing sent),
  ``dry_run`` (the exact requests were returned, nothing sent);
* result records — ``succeeded`` / ``failed`` (with ``upid`` and ``error``), written after a call
  that was allowed or confirmed. Decision and result share the ``call`` id.

Arguments, targets, details, errors and reasons go through :func:`~pvemcp.core.policy.redact.redact`
first: secrets are never written.

Writing: the file is opened with ``O_APPEND`` and each record is **one** ``os.write`` of one line,
so a line is never interleaved with another. :meth:`AuditLedger.append` is synchronous on purpose:
the write is a few hundred bytes to a local file (microseconds, no network), it never awaits, and
so it is atomic with respect to the event loop; a ``threading.Lock`` and an ``flock`` serialise it
across threads and processes (another process appending is noticed by the file size and the chain
continues from the real tail). ``fsync=True`` adds durability against power loss at the price of a
blocking flush per record.

The key is a file of 64 hex characters created with mode ``0600`` on first use (default
``<ledger>.key`` beside the ledger). A key file readable by group or others is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy._canonical import canonical_bytes, canonical_json
from pvemcp.core.policy.redact import redact, redact_text

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
    "LedgerError",
    "LedgerIssue",
    "Outcome",
    "VerifyReport",
    "cmd_audit",
    "default_key_path",
    "load_key",
    "load_or_create_key",
    "new_call_id",
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


class LedgerError(Exception):
    """The ledger or its key cannot be used; the message says which file and what to do."""


def new_call_id() -> str:
    """A fresh id tying a call's decision record to its result record."""
    return "c-" + uuid.uuid4().hex[:16]


def default_key_path(ledger: str | os.PathLike[str]) -> Path:
    """``<ledger>.key``, beside the ledger."""
    p = Path(ledger)
    return p.with_name(p.name + ".key")


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
        if not self.path.parent.is_dir():
            raise LedgerError(f"cannot open ledger {self.path}: directory {self.path.parent} does not exist")
        self.key_file = Path(key_file) if key_file is not None else default_key_path(self.path)
        self._key = key if key is not None else load_or_create_key(self.key_file)
        self._clock = clock
        self._fsync = fsync
        self._lock = threading.Lock()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o600)
        try:
            self._seq, self._head, self._size = _read_tail(self.path, self._key)
        except BaseException:
            os.close(self._fd)
            raise

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
        self,
        outcome: Outcome | str,
        *,
        tool: str,
        caller: str | None = None,
        risk: str | None = None,
        target: Any = None,
        args: Mapping[str, Any] | None = None,
        upid: str | None = None,
        error: str | None = None,
        reason: str | None = None,
        call: str | None = None,
        via: str | None = None,
        details: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        plan_digest: str | None = None,
    ) -> dict[str, Any]:
        """Write one record and return it as written. Raises :class:`LedgerError` if it could not be.

        The door should treat a failure to write as a reason not to send the request (fail closed).
        """
        kind = Outcome(outcome)
        fields: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "outcome": kind.value,
            "tool": tool,
            "caller": caller,
            "risk": str(risk) if risk is not None else None,
            "call": call,
            "call_id": call_id,
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
        with self._lock:
            if self._fd < 0:
                raise LedgerError(f"ledger {self.path} is closed")
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                if size != self._size:  # another writer appended since our last write
                    self._seq, self._head, self._size = _read_tail(self.path, self._key)
                    size = self._size
                record["seq"] = self._seq + 1
                record["ts"] = _utc(self._clock())
                record["prev"] = self._head
                record["mac"] = _mac(self._key, record)
                data = (canonical_json(record) + "\n").encode("utf-8")
                written = os.write(self._fd, data)
                if written != len(data):
                    raise LedgerError(f"ledger {self.path}: short write ({written} of {len(data)} bytes)")
                if self._fsync:
                    os.fsync(self._fd)
                self._seq, self._head, self._size = record["seq"], record["mac"], size + written
            finally:
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        return record

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

    path: Path
    records: int = 0
    last_seq: int = 0
    head: str = GENESIS
    issues: list[LedgerIssue] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.issues

    def format(self, max_issues: int = 50) -> str:
        """A report for people: one summary line, then one line per problem."""
        if self.intact:
            return (
                f"OK: {self.path}: {self.records} record(s), chain intact; last seq {self.last_seq}, "
                f"head {self.head[:16]}"
            )
        lines = [f"TAMPERED: {self.path}: {len(self.issues)} problem(s) in {self.records} record(s)"]
        for issue in self.issues[:max_issues]:
            lines.append(f"  {issue.message}")
        if len(self.issues) > max_issues:
            lines.append(f"  ... and {len(self.issues) - max_issues} more")
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


def verify(path: str | os.PathLike[str], key: bytes) -> VerifyReport:
    """Check every record's MAC and the chain; report every edit, deletion, insertion or reordering.

    Raises :class:`LedgerError` only when the file cannot be read at all.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {p}: {exc.strerror or exc}") from None
    report = VerifyReport(path=p)
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
    issues.sort(key=lambda x: (x.line, x.kind))

    report.issues = issues
    report.records = len(recs)
    if recs:
        report.last_seq, report.head = recs[-1].seq, recs[-1].mac
    return report


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


def cmd_audit(args: argparse.Namespace) -> int:
    """``pvemcp audit verify [PATH] [--key-file F]``: 0 intact, 1 tampered, 2 usage or I/O error."""
    if getattr(args, "audit_command", None) != "verify":
        print("usage: pvemcp audit verify [PATH] [--key-file FILE]", file=sys.stderr)
        return 2
    path = getattr(args, "path", None) or os.environ.get("PVEMCP_AUDIT_LOG", "").strip()
    if not path:
        print("pvemcp audit verify: no ledger given; pass PATH or set PVEMCP_AUDIT_LOG", file=sys.stderr)
        return 2
    ledger = Path(path).expanduser()
    if not ledger.is_file():
        print(f"pvemcp audit verify: ledger {ledger} does not exist", file=sys.stderr)
        return 2
    key_arg = getattr(args, "key_file", None) or os.environ.get("PVEMCP_AUDIT_KEY_FILE", "").strip()
    key_path = Path(key_arg).expanduser() if key_arg else default_key_path(ledger)
    try:
        key = load_key(key_path)
        report = verify(ledger, key)
    except LedgerError as exc:
        print(f"pvemcp audit verify: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.intact else 1
