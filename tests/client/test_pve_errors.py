"""Error wording: Proxmox's own words plus a specific, actionable hint; never a secret."""

from __future__ import annotations

from pvemcp.core.pve.errors import PveError, error_from_response, parse_permission_failure, scrub


def make(
    status: int, reason: str, message: str | None = None, errors: dict[str, str] | None = None, **kw: object
) -> PveError:
    args: dict[str, object] = {
        "status": status,
        "reason": reason,
        "body_message": message,
        "body_errors": errors,
        "method": "POST",
        "path": "/nodes/pve1/qemu/100/status/start",
        "identity": "root@pam!mcp",
        "identity_kind": "token",
        "node": "pve1",
    }
    args.update(kw)
    return error_from_response(**args)  # type: ignore[arg-type]


def test_403_names_privilege_and_path() -> None:
    err = make(
        403, "Permission check failed (/vms/100, VM.PowerMgmt)", "Permission check failed (/vms/100, VM.PowerMgmt)\n"
    )
    assert err.kind == "permission" and err.status == 403
    assert err.message == "Permission check failed (/vms/100, VM.PowerMgmt)"
    assert "VM.PowerMgmt" in err.hint and "/vms/100" in err.hint and "root@pam!mcp" in err.hint
    assert "pveum acl modify /vms/100" in err.hint
    text = str(err)
    assert text.startswith("POST /nodes/pve1/qemu/100/status/start: 403 Permission check failed")


def test_403_token_not_allowed_variant() -> None:
    msg = "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.)"
    assert parse_permission_failure(msg) is None
    err = make(403, msg)
    assert "needs a ticket" in err.hint


def test_parse_permission_failure() -> None:
    assert parse_permission_failure("Permission check failed (/vms/100, VM.PowerMgmt)\n") == (
        "/vms/100",
        "VM.PowerMgmt",
    )
    assert parse_permission_failure("something else") is None


def test_400_lists_each_parameter() -> None:
    err = make(
        400,
        "Parameter verification failed.",
        "Parameter verification failed.\n",
        {
            "vmid": "invalid format - value does not look like a valid VM ID\n",
            "cores": "type check ('integer') failed - got 'x'",
        },
    )
    assert err.kind == "params"
    assert err.errors == {
        "vmid": "invalid format - value does not look like a valid VM ID",
        "cores": "type check ('integer') failed - got 'x'",
    }
    text = str(err)
    assert "cores: type check ('integer') failed - got 'x'" in text
    assert "vmid: invalid format - value does not look like a valid VM ID" in text


def test_400_pre_8_3_body_without_message_uses_reason() -> None:
    err = make(400, "Parameter verification failed.", None, {"vmid": "VM 200 already exists"})
    assert err.message == "Parameter verification failed."
    assert err.errors == {"vmid": "VM 200 already exists"}


def test_401_token_and_ticket_hints() -> None:
    token = make(401, "Authentication failed!")
    assert token.kind == "auth" and "API token 'root@pam!mcp'" in token.hint
    ticket = make(
        401, "authentication failure", "authentication failure\n", identity="alice@pve", identity_kind="ticket"
    )
    assert "alice@pve" in ticket.hint and "password" in ticket.hint


def test_500_keeps_proxmox_text_and_hints_missing_guest() -> None:
    text = "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist"
    err = make(500, text, text + "\n")
    assert err.kind == "not_found_or_state" and err.message == text
    assert "resolve the vmid again" in err.hint
    locked = make(500, "VM is locked (backup)", "VM is locked (backup)\n")
    assert "lock" in locked.hint


def test_500_multiline_message_is_one_line() -> None:
    msg = "create sdn zone object failed: 400 Parameter verification failed.\nipam: ipam-simple not existing\n"
    err = make(500, "create sdn zone object failed: 400 Parameter verification failed.", msg)
    assert (
        err.message
        == "create sdn zone object failed: 400 Parameter verification failed. ipam: ipam-simple not existing"
    )


def test_595_names_the_node() -> None:
    err = make(595, "Errors during connection establishment, proxy handshake: Connection refused", node="pve3")
    assert err.kind == "unreachable"
    assert "node 'pve3' is unreachable" in err.hint and "Connection refused" in err.hint
    assert err.message.startswith("Errors during connection establishment")


def test_501_and_other_5xx() -> None:
    missing = make(501, "Method 'GET /x' not implemented")
    assert missing.kind == "not_implemented"
    # pvemcp only sends operations of the PVE 9.1 schema: a 501 is this cluster's gap, not an unknown path
    assert "version" not in missing.hint and "9.1 API has it" in missing.hint


def test_a_stale_digest_says_to_read_the_config_again() -> None:
    for words in ("detected modified configuration - file changed by other user? Try again.", "checksum mismatch"):
        hint = make(500, words).hint
        assert "read it again (guest_config)" in hint and "new digest" in hint
    assert make(503, "Service Unavailable").kind == "server"


def test_secrets_are_scrubbed_everywhere() -> None:
    secret = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    err = make(500, f"oops {secret}", f"oops {secret}\n", {"password": f"bad {secret}"}, secrets=[secret])
    for text in (str(err), repr(err), err.message, err.reason, err.errors["password"], str(err.to_dict())):
        assert secret not in text
    assert "***" in err.message
    assert scrub("abc", ["ab"]) == "abc"  # too short to be a secret worth scrubbing


def test_to_dict_is_compact() -> None:
    err = make(403, "Permission check failed (/vms/100, VM.PowerMgmt)")
    d = err.to_dict()
    assert d["kind"] == "permission" and d["status"] == 403 and d["node"] == "pve1"
    assert "reason" not in d  # same as message: not repeated


def test_pickle_and_copy_roundtrip() -> None:
    import copy
    import pickle

    err = make(403, "Permission check failed (/vms/100, VM.PowerMgmt)")
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert isinstance(clone, PveError)
        assert str(clone) == str(err) and clone.kind == "permission" and clone.errors == err.errors
