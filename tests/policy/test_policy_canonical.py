"""One canonical JSON: what digests, tokens, the door's question binding and the ledger's MACs are made of.

The door's digest of a question's wire arguments used to have its own serialization (``\\uXXXX``
escapes instead of UTF-8); it now uses the core's. These tests pin what must not move: the ledger's
byte form (a ledger written before verifies after), tokens and questions minted and answered, with
non-ASCII and non-finite arguments.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest

from pvemcp.cli import main as cli_main
from pvemcp.core.policy._canonical import canonical_bytes, canonical_json
from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure, ConfirmationStore
from pvemcp.core.policy.ledger import AuditLedger, load_key, verify
from pvemcp.door import confirm
from pvemcp.door.confirm import arguments_digest

# A ledger written by pvemcp before this change (two records with non-ASCII text; the key beside it).
# Its lines are the canonical form as it was: if the form moved, the MACs would no longer match.
_OLD_LEDGER = (
    b'{"args":{"description":"Gr\xc3\xbc\xc3\x9fe \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac","vmid":100},"call_id":"c-1",'
    b'"caller":"Zo\xc3\xab","mac":"b8516b878c7936051104e44124a8c6af23d033734e0747977005a83bda7c6522",'
    b'"outcome":"allowed","prev":"0000000000000000000000000000000000000000000000000000000000000000",'
    b'"risk":"write","seq":1,"tool":"guest_start","ts":"2023-11-14T22:13:20.000Z","v":1}\n'
    b'{"call_id":"c-2","caller":"bob","mac":"240afafad2d8315a361d68fc48da71c9a622cae5721e105fd54b8f39989f691a",'
    b'"outcome":"denied","prev":"b8516b878c7936051104e44124a8c6af23d033734e0747977005a83bda7c6522",'
    b'"reason":"guest 600 au\xc3\x9ferhalb","risk":"destructive","seq":2,"tool":"guest_delete",'
    b'"ts":"2023-11-14T22:13:20.000Z","v":1}\n'
)
_OLD_HEAD = (
    b'{"head":"240afafad2d8315a361d68fc48da71c9a622cae5721e105fd54b8f39989f691a",'
    b'"mac":"02356b69ffc019c1f5fc0620c03e72c1d794fc63d069312c8abadc79a4665103","seq":2,"v":1}\n'
)
_OLD_KEY = b"e4314fe5da7942b9f941932ba3c00dec4c29cd993ff3dc1a5680813b26b96e69\n"


@pytest.fixture
def old_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PVEMCP_AUDIT_LOG", raising=False)
    monkeypatch.delenv("PVEMCP_AUDIT_KEY_FILE", raising=False)
    path = tmp_path / "audit.jsonl"
    path.write_bytes(_OLD_LEDGER)
    Path(f"{path}.head").write_bytes(_OLD_HEAD)
    key = Path(f"{path}.key")
    key.write_bytes(_OLD_KEY)
    key.chmod(0o600)
    return path


def test_an_existing_ledger_still_verifies(old_ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = verify(old_ledger, load_key(Path(f"{old_ledger}.key")))
    assert report.intact and report.records == 2, report.format()
    assert cli_main(["audit", "verify", str(old_ledger)]) == 0
    assert capsys.readouterr().out.startswith("OK:")


def test_an_existing_ledger_goes_on_in_the_same_form(old_ledger: Path) -> None:
    with AuditLedger(old_ledger, clock=lambda: 1_700_000_100.0) as ledger:
        ledger.append("confirmed", tool="guest_stop", caller="Zoë", risk="destructive", reason="ja ✓")
    assert verify(old_ledger, load_key(Path(f"{old_ledger}.key"))).intact
    assert old_ledger.read_bytes().startswith(_OLD_LEDGER)
    assert "ja ✓".encode() in old_ledger.read_bytes().splitlines()[-1]  # UTF-8, not \\u escapes


def test_canonical_form_is_sorted_compact_utf8_and_refuses_nan_by_default() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é✓"}) == '{"a":"é✓","b":[1,2.5]}'
    assert canonical_bytes({"a": "é"}) == '{"a":"é"}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
    # for a digest of a client's arguments the non-finite tokens are allowed, and distinct from strings
    assert canonical_json({"x": [math.nan, math.inf, -math.inf]}, allow_nan=True) == '{"x":[NaN,Infinity,-Infinity]}'
    assert canonical_json({"x": "NaN"}, allow_nan=True) == '{"x":"NaN"}'


@pytest.mark.parametrize(
    "arguments",
    [
        {"vmid": 100, "description": "Grüße ✓"},
        {"vmid": 100, "cpulimit": math.nan},
        {"vmid": 100, "cpulimit": math.inf},
    ],
    ids=["non-ascii", "nan", "infinity"],
)
def test_a_question_minted_is_answered_with_the_same_arguments(arguments: dict[str, Any]) -> None:
    from mcp.shared.exceptions import MCPError

    store = confirm.PendingQuestions()

    def mint() -> str:
        return store.mint(
            tool="vm_config_set",
            wire_arguments=arguments,
            caller="alice",
            question="Change?",
            confirm_tool="vm_config_set",
            confirm_arguments=arguments,
        )

    state = mint()
    reordered = dict(reversed(list(arguments.items())))  # key order is the client's, not part of the binding
    pending = store.take(state, tool="vm_config_set", wire_arguments=reordered, caller="alice")
    assert pending.confirm_arguments is arguments
    state = mint()
    with pytest.raises(MCPError):  # other arguments: refused
        store.take(state, tool="vm_config_set", wire_arguments={**arguments, "vmid": 101}, caller="alice")


def test_digests_tell_non_finite_numbers_and_their_names_apart() -> None:
    digests = {arguments_digest({"x": v}) for v in (math.nan, "NaN", math.inf, "Infinity", -math.inf, None)}
    assert len(digests) == 6
    assert arguments_digest({"a": 1, "b": "ü"}) == arguments_digest({"b": "ü", "a": 1})


def test_ascii_arguments_digest_as_before() -> None:
    """The door's former form differed only in escaping non-ASCII text: a question sealed by a replica
    of the former version, for ASCII arguments (every curated tool's vmids, nodes, names), still matches."""
    arguments = {"vmid": 100, "node": "pve1", "vmids": [100, 101], "force": True, "timeout": 1.5}
    former = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    assert arguments_digest(arguments) == hashlib.sha256(former).hexdigest()


class _SpentOnce:
    def __init__(self) -> None:
        self.ids: set[bytes] = set()

    async def spend(self, token_id: bytes, expires_at: float) -> bool:
        fresh = token_id not in self.ids
        self.ids.add(token_id)
        return fresh


@pytest.mark.anyio
async def test_a_shared_question_binds_non_ascii_arguments_across_replicas() -> None:
    from mcp.shared.exceptions import MCPError

    from pvemcp.door.shared_pending import SharedPendingQuestions

    spender = _SpentOnce()
    a, b = SharedPendingQuestions(spender), SharedPendingQuestions(spender)
    arguments: dict[str, Any] = {"vmid": 100, "description": "Grüße ✓", "cpulimit": math.nan}
    fields: dict[str, Any] = {"tool": "vm_config_set", "caller": "Zoë"}
    state = a.mint(**fields, wire_arguments=arguments, question="?", confirm_tool="vm_config_set", confirm_arguments={})
    with pytest.raises(MCPError):
        await b.take_once(state, **fields, wire_arguments={**arguments, "description": "Grusse"})
    state = a.mint(**fields, wire_arguments=arguments, question="?", confirm_tool="vm_config_set", confirm_arguments={})
    pending = await b.take_once(state, **fields, wire_arguments=dict(reversed(list(arguments.items()))))
    assert pending.question == "?"


def test_a_confirmation_token_minted_is_redeemed_with_non_ascii_arguments() -> None:
    store = ConfirmationStore(ttl_s=60)
    arguments = {"vmid": 100, "description": "Grüße ✓ 日本"}
    token = store.issue("vm_config_set", arguments, caller="Zoë")
    store.redeem(token, "vm_config_set", dict(reversed(list(arguments.items()))), caller="Zoë")
    other = store.issue("vm_config_set", arguments, caller="Zoë")
    with pytest.raises(ConfirmationError) as refused:
        store.redeem(other, "vm_config_set", {**arguments, "description": "Grüße ✗ 日本"}, caller="Zoë")
    assert refused.value.reason is ConfirmationFailure.OTHER_ARGUMENTS
