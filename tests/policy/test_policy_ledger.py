"""Audit ledger: the chain verifies after a mixed run and fails, saying where, after each tampering."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pvemcp.cli import main as cli_main
from pvemcp.core.policy._canonical import canonical_bytes, canonical_json
from pvemcp.core.policy.config import PolicyConfig
from pvemcp.core.policy.ledger import (
    GENESIS,
    AuditLedger,
    HeadAnchor,
    LedgerError,
    Outcome,
    default_head_path,
    default_key_path,
    load_key,
    load_or_create_key,
    new_call_id,
    verify,
)
from pvemcp.door.admin import cmd_audit

SECRETS = ("hunter2", "TOKENVALUE", "pw123", "AAAAC3Nza", "deadbeef-cafe")


def mixed_run(ledger: AuditLedger) -> None:
    c1, c2 = new_call_id(), new_call_id()
    target = {"vmid": 100, "node": "pve1", "name": "web"}
    ledger.append(
        Outcome.ALLOWED, tool="guest_start", caller="alice", risk="write", target=target, args={"vmid": 100}, call=c1
    )
    ledger.append(
        "succeeded",
        tool="guest_start",
        caller="alice",
        risk="write",
        call=c1,
        upid="UPID:pve1:0001:start:100:root@pam:",
    )
    ledger.append("pending", tool="guest_stop", caller="bob", risk="destructive", args={"vmid": 101})
    ledger.append(
        "confirmed",
        tool="guest_stop",
        caller="bob",
        risk="destructive",
        via="token",
        call=c2,
        args={"vmid": 101, "confirm_token": "TOKENVALUE"},
    )
    ledger.append("failed", tool="guest_stop", caller="bob", risk="destructive", call=c2, error="VM 101 not running")
    ledger.append(
        "declined", tool="guest_delete", caller="bob", risk="destructive", via="elicitation", reason="user declined"
    )
    ledger.append("denied", tool="guest_delete", caller="eve", risk="destructive", reason="guest 600 is out of scope")
    ledger.append(
        "dry_run",
        tool="guest_create",
        caller="alice",
        risk="write",
        args={"vmid": 120, "cipassword": "hunter2", "sshkeys": "ssh-ed25519 AAAAC3Nza user@host"},
    )
    ledger.append(
        "failed",
        tool="api_call",
        caller="alice",
        risk="write",
        args={"path": "/access/password", "body": {"password": "pw123"}},
        error="401 with Authorization: PVEAPIToken=root@pam!ci=deadbeef-cafe",
        details={"requests": [{"method": "PUT", "headers": {"Authorization": "x"}}]},
    )
    c3 = new_call_id()
    ledger.append("previewed", tool="guest_delete", caller="bob", risk="destructive", call_id=c3, plan_digest="d1")
    ledger.append("expired", tool="guest_delete", caller="bob", risk="destructive", call_id=c3, plan_digest="d1")
    ledger.append("plan_changed", tool="guest_stop", caller="bob", risk="destructive", plan_digest="d2")


RECORDS = 12  # what mixed_run writes


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    with AuditLedger(path, clock=lambda: 1_700_000_000.0) as ledger:
        mixed_run(ledger)
    return path


def key_of(path: Path) -> bytes:
    return load_key(default_key_path(path))


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def kinds(path: Path, key: bytes | None = None) -> list[tuple[int, str]]:
    report = verify(path, key if key is not None else key_of(path))
    assert not report.intact
    return [(i.line, i.kind) for i in report.issues]


# --- a clean run ----------------------------------------------------------------------------


def test_mixed_run_verifies(ledger_path: Path) -> None:
    report = verify(ledger_path, key_of(ledger_path))
    assert report.intact, report.format()
    assert report.records == RECORDS and report.last_seq == RECORDS
    records = [json.loads(x) for x in lines_of(ledger_path)]
    assert [r["seq"] for r in records] == list(range(1, RECORDS + 1))
    assert records[0]["prev"] == GENESIS
    for a, b in itertools.pairwise(records):
        assert b["prev"] == a["mac"]
    assert report.head == records[-1]["mac"]
    assert {r["outcome"] for r in records} == {o.value for o in Outcome}
    assert records[0]["ts"] == "2023-11-14T22:13:20.000Z"
    assert records[0]["target"] == {"vmid": 100, "node": "pve1", "name": "web"}
    assert records[1]["upid"].startswith("UPID:") and records[0]["call_id"] == records[1]["call_id"]
    assert records[3]["via"] == "token"
    # every record carries a call id (a fresh one when the caller gave none); plan digests where given
    assert all(r["call_id"].startswith("c-") for r in records)
    assert len({r["call_id"] for r in records[4:9]}) == 5
    assert records[9]["call_id"] == records[10]["call_id"] and records[10]["plan_digest"] == "d1"
    assert records[11]["plan_digest"] == "d2" and "plan_digest" not in records[0]
    assert "OK:" in report.format() and f"{RECORDS} record(s)" in report.format()
    assert report.anchor is not None and report.anchor.seq == RECORDS and report.anchor.head == report.head


def test_records_are_canonical_lines_with_a_correct_mac(ledger_path: Path) -> None:
    key = key_of(ledger_path)
    for raw in lines_of(ledger_path):
        record = json.loads(raw)
        assert raw == (canonical_json(record) + "\n").encode()
        body = {k: v for k, v in record.items() if k != "mac"}
        assert record["mac"] == hmac.new(key, canonical_bytes(body), hashlib.sha256).hexdigest()
        assert "mac" not in body and record["v"] == 1


def test_key_and_ledger_files_are_private(ledger_path: Path) -> None:
    key_file = default_key_path(ledger_path)
    assert key_file.name == "audit.jsonl.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger_path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32
    assert not [p for p in ledger_path.parent.iterdir() if p.name.startswith(".pvemcp-key-")]


def test_secrets_are_redacted_and_never_written(ledger_path: Path) -> None:
    raw = ledger_path.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
    records = [json.loads(x) for x in lines_of(ledger_path)]
    assert records[3]["args"] == {"vmid": 101, "confirm_token": "***"}
    assert records[7]["args"]["cipassword"] == "***" and records[7]["args"]["sshkeys"] == "***"
    assert records[8]["args"]["body"] == {"password": "***"}
    assert records[8]["args"]["path"] == "/access/password"
    assert "PVEAPIToken=***" in records[8]["error"]
    assert records[8]["details"]["requests"][0]["headers"] == "***"


def test_absent_fields_are_omitted(tmp_path: Path) -> None:
    with AuditLedger(tmp_path / "l") as ledger:
        record = ledger.append("denied", tool="t")
    assert set(record) == {"v", "seq", "ts", "outcome", "tool", "call_id", "prev", "mac"}  # call_id: always


def test_unknown_outcome_is_refused(tmp_path: Path) -> None:
    with AuditLedger(tmp_path / "l") as ledger, pytest.raises(ValueError):
        ledger.append("maybe", tool="t")


def test_a_risk_is_one_of_the_classes(tmp_path: Path) -> None:
    """The record holds the class's word, from the enum or the word itself; another word is refused."""
    from pvemcp.core.policy.risk_class import Risk

    with AuditLedger(tmp_path / "l") as ledger:
        assert ledger.append("allowed", tool="t", risk=Risk.DESTRUCTIVE)["risk"] == "destructive"
        assert ledger.append("allowed", tool="t", risk="write")["risk"] == "write"
        with pytest.raises(ValueError):
            ledger.append("allowed", tool="t", risk="catastrophic")
        assert ledger.append("allowed", tool="t")["seq"] == 3  # the refused one wrote nothing


# --- tampering ---------------------------------------------------------------------------


def test_edit_a_field(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    record = json.loads(lines[2])
    record["tool"] = "guest_list"  # make a destructive call look harmless; the mac stays
    lines[2] = (canonical_json(record) + "\n").encode()
    write_lines(ledger_path, lines)
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(3, 3, "modified")]
    assert "line 3 (seq 3)" in report.issues[0].message


def test_edit_with_a_recomputed_mac_under_another_key(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    record = json.loads(lines[4])
    record["outcome"] = "succeeded"
    body = {k: v for k, v in record.items() if k != "mac"}
    record["mac"] = hmac.new(b"guess" * 8, canonical_bytes(body), hashlib.sha256).hexdigest()
    lines[4] = (canonical_json(record) + "\n").encode()
    write_lines(ledger_path, lines)
    found = kinds(ledger_path)
    assert (5, "modified") in found
    assert any(line == 6 for line, _ in found)  # the next record no longer links to it


def test_delete_a_line(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    del lines[3]
    write_lines(ledger_path, lines)
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(4, 5, "deleted")]
    assert "seq 4 deleted" in report.issues[0].message


def test_delete_the_first_line(ledger_path: Path) -> None:
    write_lines(ledger_path, lines_of(ledger_path)[1:])
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(1, 2, "deleted")]


def test_truncate_in_the_middle(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    write_lines(ledger_path, lines[:2] + lines[5:])
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(3, 6, "deleted")]
    assert "3 record(s) missing" in report.issues[0].message and "seq 3..5" in report.issues[0].message


def test_insert_a_forged_line(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    second = json.loads(lines[1])
    forged = {**json.loads(lines[2]), "tool": "guest_list", "prev": second["mac"], "seq": 3, "mac": "f" * 64}
    lines.insert(2, (canonical_json(forged) + "\n").encode())
    write_lines(ledger_path, lines)
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(3, "inserted")]
    assert "inserted" in report.format()


def test_insert_a_copy_of_a_line(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines.insert(5, lines[4])
    write_lines(ledger_path, lines)
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(6, "duplicate")]
    assert "duplicate of line 5" in report.issues[0].message


def test_insert_a_blank_line(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines.insert(3, b"\n")
    write_lines(ledger_path, lines)
    assert kinds(ledger_path) == [(4, "blank")]


def test_insert_garbage(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines.insert(3, b'{"hello": "world"}\n')
    write_lines(ledger_path, lines)
    assert kinds(ledger_path) == [(4, "unparseable")]


def test_swap_two_lines(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(ledger_path, lines)
    found = kinds(ledger_path)
    assert {k for _, k in found} == {"reordered"}
    assert {line for line, _ in found} >= {2, 3}


def test_swap_the_first_two_lines(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines[0], lines[1] = lines[1], lines[0]
    write_lines(ledger_path, lines)
    found = kinds(ledger_path)
    assert (1, "reordered") in found and (2, "reordered") in found


def test_cut_the_last_line(ledger_path: Path) -> None:
    data = ledger_path.read_bytes()
    ledger_path.write_bytes(data[:-20])
    report = verify(ledger_path, key_of(ledger_path))
    # the torn line, and the anchor's record missing after it
    assert [(i.line, i.kind) for i in report.issues] == [(RECORDS, "truncated"), (RECORDS + 1, "deleted")]
    assert report.records == RECORDS - 1


def test_drop_only_the_trailing_newline(ledger_path: Path) -> None:
    ledger_path.write_bytes(ledger_path.read_bytes()[:-1])
    assert kinds(ledger_path) == [(RECORDS, "truncated"), (RECORDS + 1, "deleted")]


def test_reformat_a_line(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines[6] = (json.dumps(json.loads(lines[6]), indent=None) + "\n").encode()  # ", " and ": " separators
    write_lines(ledger_path, lines)
    assert kinds(ledger_path) == [(7, "reformatted")]


def test_change_the_key(ledger_path: Path) -> None:
    report = verify(ledger_path, b"k" * 32)
    assert [(i.line, i.kind) for i in report.issues] == [(0, "key"), (RECORDS + 1, "anchor")]
    assert "wrong key" in report.issues[0].message


def test_replace_the_key_file_and_rewrite_everything(ledger_path: Path) -> None:
    """Re-signing every record with a new key is caught by anyone who kept the old key."""
    old_key = key_of(ledger_path)
    default_key_path(ledger_path).unlink()
    records = [json.loads(x) for x in lines_of(ledger_path)]
    ledger_path.unlink()
    default_head_path(ledger_path).unlink()
    with AuditLedger(ledger_path) as fresh:
        for r in records:
            fresh.append(r["outcome"], tool="guest_list", caller=r.get("caller"))
    assert verify(ledger_path, key_of(ledger_path)).intact
    assert kinds(ledger_path, old_key) == [(0, "key"), (RECORDS + 1, "anchor")]


def test_losing_the_tail_leaves_a_shorter_valid_chain(ledger_path: Path) -> None:
    """The chain alone cannot see tail loss; without its anchor verify says it cannot rule it out."""
    write_lines(ledger_path, lines_of(ledger_path)[:-2])
    default_head_path(ledger_path).unlink()
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(RECORDS - 1, "anchor")]
    assert "is missing" in report.issues[0].message and report.last_seq == RECORDS - 2


def test_verify_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot read"):
        verify(tmp_path / "nope", b"k" * 32)


def test_empty_ledger_is_intact(tmp_path: Path) -> None:
    (tmp_path / "l").write_bytes(b"")
    report = verify(tmp_path / "l", b"k" * 32)
    assert report.intact and report.records == 0 and report.head == GENESIS


# --- the end of the chain: head anchor and pinned head -----------------------------------------


def test_delete_the_last_line(ledger_path: Path) -> None:
    write_lines(ledger_path, lines_of(ledger_path)[:-1])
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(RECORDS, None, "deleted")]
    message = report.issues[0].message
    assert f"after line {RECORDS - 1} (seq {RECORDS - 1})" in message
    assert f"1 record(s) missing at the end (seq {RECORDS} deleted)" in message
    assert "head anchor audit.jsonl.head records seq 12" in message


def test_delete_the_last_three_lines(ledger_path: Path) -> None:
    write_lines(ledger_path, lines_of(ledger_path)[:-3])
    report = verify(ledger_path, key_of(ledger_path))
    assert [i.kind for i in report.issues] == ["deleted"]
    assert f"3 record(s) missing at the end (seq {RECORDS - 2}..{RECORDS} deleted)" in report.issues[0].message


def test_append_a_forged_record_at_the_end(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    last = json.loads(lines[-1])
    forged = {**last, "seq": RECORDS + 1, "prev": last["mac"], "tool": "guest_list", "mac": "e" * 64}
    write_lines(ledger_path, [*lines, (canonical_json(forged) + "\n").encode()])
    assert kinds(ledger_path) == [(RECORDS + 1, "modified")]


def test_swap_the_last_two_lines(ledger_path: Path) -> None:
    lines = lines_of(ledger_path)
    lines[-1], lines[-2] = lines[-2], lines[-1]
    write_lines(ledger_path, lines)
    found = kinds(ledger_path)
    assert {k for _, k in found} == {"reordered"} and {line for line, _ in found} >= {RECORDS - 1, RECORDS}


def test_empty_the_file(ledger_path: Path) -> None:
    ledger_path.write_bytes(b"")
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(0, "wiped")]
    assert f"the ledger is empty but its head anchor audit.jsonl.head records seq {RECORDS}" in report.format()


def test_remove_the_file(ledger_path: Path) -> None:
    ledger_path.unlink()
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(0, "wiped")]
    assert "the ledger does not exist" in report.issues[0].message


def test_replace_by_a_shorter_foreign_ledger(ledger_path: Path, tmp_path: Path) -> None:
    """Another ledger's records (another key) in place of this one: nothing verifies, the anchor says how much."""
    other = tmp_path / "other.jsonl"
    with AuditLedger(other) as ledger:
        ledger.append("allowed", tool="t")
    ledger_path.write_bytes(other.read_bytes())
    found = kinds(ledger_path)
    assert (0, "key") in found and (0, "wiped") in found


def test_remove_the_anchor(ledger_path: Path) -> None:
    default_head_path(ledger_path).unlink()
    report = verify(ledger_path, key_of(ledger_path))
    assert [(i.line, i.kind) for i in report.issues] == [(RECORDS + 1, "anchor")]
    assert "audit.jsonl.head is missing" in report.issues[0].message


def test_edit_the_anchor(ledger_path: Path) -> None:
    """Lowering the anchor's seq to hide a truncation breaks its MAC."""
    anchor = default_head_path(ledger_path)
    doc = json.loads(anchor.read_text())
    doc["seq"] = RECORDS - 2
    anchor.write_text(json.dumps(doc))
    write_lines(ledger_path, lines_of(ledger_path)[:-2])
    report = verify(ledger_path, key_of(ledger_path))
    assert [i.kind for i in report.issues] == ["anchor"]
    assert "does not verify with this key" in report.issues[0].message


def test_rollback_of_ledger_and_anchor_is_caught_only_by_a_pinned_head(ledger_path: Path, tmp_path: Path) -> None:
    anchor = default_head_path(ledger_path)
    saved_ledger, saved_anchor = ledger_path.read_bytes(), anchor.read_bytes()
    with AuditLedger(ledger_path) as ledger:
        ledger.append("allowed", tool="guest_delete")
        pinned = HeadAnchor(ledger.last_seq, ledger.head)
    ledger_path.write_bytes(saved_ledger)
    anchor.write_bytes(saved_anchor)
    assert verify(ledger_path, key_of(ledger_path)).intact  # consistent, as far as the files alone can tell
    report = verify(ledger_path, key_of(ledger_path), expect_head=pinned)
    assert [(i.line, i.kind) for i in report.issues] == [(RECORDS + 1, "deleted")]
    assert f"the expected head records seq {RECORDS + 1}" in report.issues[0].message
    shortened = HeadAnchor(pinned.seq, pinned.head[:16])  # a pin may keep a prefix of the MAC
    assert not verify(ledger_path, key_of(ledger_path), expect_head=shortened).intact


def test_pinned_head_names_a_record_that_was_rewritten(ledger_path: Path) -> None:
    """Someone with the key truncated, re-anchored and wrote new records: the pin sees the rewrite."""
    key = key_of(ledger_path)
    pinned = HeadAnchor(RECORDS, verify(ledger_path, key).head)
    write_lines(ledger_path, lines_of(ledger_path)[:-1])
    default_head_path(ledger_path).unlink()
    assert cli_main(["audit", "head", "--reanchor", str(ledger_path)]) == 0
    with AuditLedger(ledger_path) as ledger:
        ledger.append("allowed", tool="harmless")
    assert verify(ledger_path, key).intact
    report = verify(ledger_path, key, expect_head=pinned)
    assert [(i.line, i.seq, i.kind) for i in report.issues] == [(RECORDS, RECORDS, "pinned")]
    assert f"line {RECORDS} (seq {RECORDS}): not the record the expected head names" in report.issues[0].message


def test_a_pinned_head_still_in_the_ledger_passes(ledger_path: Path) -> None:
    key = key_of(ledger_path)
    pinned = HeadAnchor(RECORDS, verify(ledger_path, key).head)
    with AuditLedger(ledger_path) as ledger:
        ledger.append("allowed", tool="t")
    report = verify(ledger_path, key, expect_head=pinned)
    assert report.intact and "the expected head (seq 12) matches" in report.format()


def test_writer_refuses_a_ledger_behind_its_anchor(ledger_path: Path) -> None:
    write_lines(ledger_path, lines_of(ledger_path)[:-1])
    with pytest.raises(LedgerError, match=f"ends at seq {RECORDS - 1} but its head anchor records seq {RECORDS}"):
        AuditLedger(ledger_path)
    ledger_path.unlink()
    with pytest.raises(LedgerError, match="ends at seq 0"):
        AuditLedger(ledger_path)
    assert not verify(ledger_path, key_of(ledger_path)).intact  # the refused start did not hide the wipe


def test_writer_refuses_records_without_an_anchor(ledger_path: Path) -> None:
    default_head_path(ledger_path).unlink()
    with pytest.raises(LedgerError, match=r"head anchor .* is missing"):
        AuditLedger(ledger_path)
    assert cli_main(["audit", "head", "--reanchor", str(ledger_path)]) == 0
    with AuditLedger(ledger_path) as ledger:
        assert ledger.last_seq == RECORDS


def test_reanchor_refuses_a_removed_ledger(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger_path.unlink()
    assert cli_main(["audit", "head", "--reanchor", str(ledger_path)]) == 2
    assert "nothing to re-anchor" in capsys.readouterr().err
    assert default_head_path(ledger_path).is_file()  # the evidence of the wipe stays


def test_reanchor_refuses_a_broken_chain(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = lines_of(ledger_path)
    del lines[3]
    write_lines(ledger_path, lines)
    assert cli_main(["audit", "head", "--reanchor", str(ledger_path)]) == 2
    assert "not re-anchoring" in capsys.readouterr().err


def test_writer_refuses_a_truncation_while_it_runs(ledger_path: Path) -> None:
    with AuditLedger(ledger_path) as ledger:
        ledger.append("allowed", tool="t")
        write_lines(ledger_path, lines_of(ledger_path)[:-3])
        with pytest.raises(LedgerError, match="records were removed"):
            ledger.append("allowed", tool="t")
    assert [i.kind for i in verify(ledger_path, key_of(ledger_path)).issues] == ["deleted"]


def test_an_anchor_one_append_behind_is_brought_forward(ledger_path: Path) -> None:
    """What a crash between the record's write and the anchor's leaves: not tampering."""
    anchor = default_head_path(ledger_path)
    behind = anchor.read_bytes()
    with AuditLedger(ledger_path) as ledger:
        ledger.append("allowed", tool="t")
    anchor.write_bytes(behind)
    report = verify(ledger_path, key_of(ledger_path))
    assert report.intact and "1 record(s) after its head anchor" in report.format()
    with AuditLedger(ledger_path) as ledger:
        assert ledger.last_seq == RECORDS + 1
    report = verify(ledger_path, key_of(ledger_path))
    assert report.anchor == HeadAnchor(RECORDS + 1, report.head)


def test_anchor_is_private_and_rewritten_atomically(ledger_path: Path) -> None:
    anchor = default_head_path(ledger_path)
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert sorted(p.name for p in ledger_path.parent.iterdir()) == [
        "audit.jsonl",
        "audit.jsonl.head",
        "audit.jsonl.key",
    ]


# --- the writer across restarts, writers and tasks ------------------------------------------


def test_reopen_continues_the_chain(ledger_path: Path) -> None:
    with AuditLedger(ledger_path) as ledger:
        assert ledger.last_seq == RECORDS
        record = ledger.append("allowed", tool="t")
    assert record["seq"] == RECORDS + 1
    assert verify(ledger_path, key_of(ledger_path)).intact


def test_reopen_with_another_key_is_refused(ledger_path: Path, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="does not verify with this key"):
        AuditLedger(ledger_path, key_file=tmp_path / "other.key")


def test_reopen_after_a_torn_write_is_refused(ledger_path: Path) -> None:
    with open(ledger_path, "ab") as f:
        f.write(b'{"v":1,"seq":10')
    with pytest.raises(LedgerError, match="incomplete line"):
        AuditLedger(ledger_path)


def test_reopen_after_garbage_tail_is_refused(ledger_path: Path) -> None:
    with open(ledger_path, "ab") as f:
        f.write(b"garbage\n")
    with pytest.raises(LedgerError, match="not a ledger record"):
        AuditLedger(ledger_path)


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "l"
    a = AuditLedger(path)
    b = AuditLedger(path)
    try:
        for i in range(10):
            (a if i % 3 else b).append("allowed", tool=f"t{i}")
    finally:
        a.close()
        b.close()
    report = verify(path, key_of(path))
    assert report.intact, report.format()
    assert report.last_seq == 10


def test_concurrent_asyncio_appends(tmp_path: Path) -> None:
    path = tmp_path / "l"
    ledger = AuditLedger(path)

    async def one(i: int) -> int:
        await asyncio.sleep(0)
        return int(ledger.append("allowed", tool="t", args={"i": i})["seq"])

    async def run() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(200)))

    seqs = asyncio.run(run())
    ledger.close()
    assert sorted(seqs) == list(range(1, 201))
    assert verify(path, key_of(path)).intact


def test_concurrent_thread_appends(tmp_path: Path) -> None:
    path = tmp_path / "l"
    ledger = AuditLedger(path)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(25):
            ledger.append("allowed", tool="t")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.close()
    report = verify(path, key_of(path))
    assert report.intact and report.last_seq == 200


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    ledger = AuditLedger(tmp_path / "l")
    ledger.close()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.append("allowed", tool="t")


def test_fsync_mode(tmp_path: Path) -> None:
    with AuditLedger(tmp_path / "l", fsync=True) as ledger:
        ledger.append("allowed", tool="t")
    assert verify(tmp_path / "l", key_of(tmp_path / "l")).intact


def test_missing_directory_is_created_private(tmp_path: Path) -> None:
    """A fresh host has no /var/log/pvemcp: the first start creates it (mode 0700) instead of failing."""
    path = tmp_path / "var" / "log" / "pvemcp" / "audit.jsonl"
    with AuditLedger(path) as ledger:
        ledger.append("allowed", tool="t")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert verify(path, key_of(path)).intact


def test_uncreatable_directory_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(LedgerError) as caught:
        AuditLedger(tmp_path / "file" / "pvemcp" / "audit.jsonl")
    message = str(caught.value)
    assert f"cannot create the directory {tmp_path / 'file' / 'pvemcp'}" in message
    assert "PVEMCP_AUDIT_LOG" in message and "install -d" in message


# --- the key ----------------------------------------------------------------------------------


def test_key_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "k"
    first = load_or_create_key(path)
    assert load_or_create_key(path) == first and load_key(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_key(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "l.key"
    key.write_text("ab" * 32)
    key.chmod(0o644)
    with pytest.raises(LedgerError, match="chmod 600"):
        AuditLedger(tmp_path / "l")


@pytest.mark.parametrize(("content", "match"), [("zz", "hex"), ("abcd", "at least 16")])
def test_bad_key_files(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "k").write_text(content)
    with pytest.raises(LedgerError, match=match):
        load_key(tmp_path / "k")
    with pytest.raises(LedgerError, match="does not exist"):
        load_key(tmp_path / "missing")


def test_configured_key_path_and_from_config(tmp_path: Path) -> None:
    assert AuditLedger.from_config(PolicyConfig()) is None
    config = PolicyConfig.from_mapping(
        {"audit_log": str(tmp_path / "a.jsonl"), "audit_key_file": str(tmp_path / "sec.key")}
    )
    ledger = AuditLedger.from_config(config)
    assert ledger is not None
    with ledger:
        ledger.append("denied", tool="t")
    assert (tmp_path / "sec.key").is_file() and not (tmp_path / "a.jsonl.key").exists()
    assert verify(tmp_path / "a.jsonl", load_key(tmp_path / "sec.key")).intact


# --- the CLI ---------------------------------------------------------------------------------


def ns(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "command": "audit",
        "audit_command": "verify",
        "path": None,
        "key_file": None,
        "expect_head": None,
    }
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PVEMCP_AUDIT_LOG", raising=False)
    monkeypatch.delenv("PVEMCP_AUDIT_KEY_FILE", raising=False)


@pytest.mark.usefixtures("no_env")
def test_cmd_audit_intact(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_audit(ns(path=str(ledger_path))) == 0
    assert capsys.readouterr().out.startswith("OK:")


@pytest.mark.usefixtures("no_env")
def test_cmd_audit_tampered(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = lines_of(ledger_path)
    del lines[4]
    write_lines(ledger_path, lines)
    assert cmd_audit(ns(path=str(ledger_path))) == 1
    out = capsys.readouterr().out
    assert out.startswith("TAMPERED:") and "line 5 (seq 6)" in out


@pytest.mark.usefixtures("no_env")
def test_cmd_audit_env_path_and_key_file(ledger_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = tmp_path / "elsewhere.key"
    default_key_path(ledger_path).rename(moved)
    monkeypatch.setenv("PVEMCP_AUDIT_LOG", str(ledger_path))
    assert cmd_audit(ns()) == 2  # key not beside the ledger any more
    assert cmd_audit(ns(key_file=str(moved))) == 0
    monkeypatch.setenv("PVEMCP_AUDIT_KEY_FILE", str(moved))
    assert cmd_audit(ns()) == 0


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    "make",
    [
        lambda p: ns(path=None),
        lambda p: ns(path=str(p.parent / "missing.jsonl")),
        lambda p: ns(path=str(p), key_file=str(p.parent / "missing.key")),
        lambda p: ns(path=str(p.parent)),
        lambda p: ns(path=str(p), audit_command="rotate"),
    ],
)
def test_cmd_audit_usage_errors(
    ledger_path: Path, make: Callable[[Path], argparse.Namespace], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_audit(make(ledger_path)) == 2
    assert capsys.readouterr().err.strip()


@pytest.mark.usefixtures("no_env")
def test_cmd_audit_head_prints_a_pin_that_verify_takes(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["audit", "head", str(ledger_path)]) == 0
    pin = capsys.readouterr().out.strip()
    assert pin == f"{RECORDS}:{verify(ledger_path, key_of(ledger_path)).head}"
    assert cli_main(["audit", "verify", str(ledger_path), "--expect-head", pin]) == 0
    assert "the expected head (seq 12) matches" in capsys.readouterr().out
    write_lines(ledger_path, lines_of(ledger_path)[:-1])
    default_head_path(ledger_path).unlink()
    assert cli_main(["audit", "verify", str(ledger_path), "--expect-head", pin]) == 1
    out = capsys.readouterr().out
    assert out.startswith("TAMPERED:") and f"(seq {RECORDS} deleted); the expected head" in out
    assert cli_main(["audit", "head", str(ledger_path)]) == 1  # no pin printed for a ledger that fails


@pytest.mark.usefixtures("no_env")
def test_cmd_audit_wiped_ledger_exits_1(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger_path.unlink()
    assert cli_main(["audit", "verify", str(ledger_path)]) == 1
    assert "the ledger does not exist but its head anchor" in capsys.readouterr().out


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize("pin", ["12", "x:abc", "12:" + "z" * 64, "12:abcd"])
def test_cmd_audit_bad_expected_head(ledger_path: Path, pin: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["audit", "verify", str(ledger_path), "--expect-head", pin]) == 2
    assert "is not SEQ:MAC" in capsys.readouterr().err


@pytest.mark.usefixtures("no_env")
def test_cli_routes_to_cmd_audit(ledger_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["audit", "verify", str(ledger_path)]) == 0
    assert cli_main(["audit", "verify", str(ledger_path), "--key-file", str(ledger_path) + ".key"]) == 0
    assert "OK:" in capsys.readouterr().out
