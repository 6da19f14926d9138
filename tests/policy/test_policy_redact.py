"""Redaction: secret-looking keys at any depth, credentials by shape, no mutation of the input."""

from __future__ import annotations

import copy

import pytest

from pvemcp.core.policy.redact import MASK, is_secret_key, redact, redact_text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "cipassword",
        "confirmation-password",
        "token",
        "confirm_token",
        "CSRFPreventionToken",
        "secret",
        "client_secret",
        "ticket",
        "vncticket",
        "sshkeys",
        "ssh-public-keys",
        "key",
        "encryption-key",
        "client_key",
        "eab-hmac-key",
        "keyring",
        "apikey",
        "tfa-challenge",
        "totp",
        "otp",
        "data",
        "content",
        "input-data",
        "headers",
        "privkey_private",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "vmid",
        "node",
        "keyboard",
        "tokenid",
        "tokens",
        "name",
        "description",
        "storage",
        "keephugepages",
        "body",
        "path",
    ],
)
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_extra_keys() -> None:
    assert is_secret_key("my_field", extra_keys=["MY-FIELD"])


def test_redact_nested_without_mutating() -> None:
    args = {
        "vmid": 100,
        "password": "hunter2",
        "net0": "virtio,bridge=vmbr0",
        "nested": {"Token": {"deep": "t0k3n"}, "list": [{"secret": "s3"}, {"ok": 1}]},
        "confirm_token": "abc",
        "tags": ("a", "b"),
        "flags": {"x"},
        "ratio": float("inf"),
        "obj": object,
    }
    before = copy.deepcopy(args)
    out = redact(args)
    assert args == before
    assert out["vmid"] == 100 and out["net0"] == "virtio,bridge=vmbr0"
    assert out["password"] == MASK
    assert out["nested"]["Token"] == MASK
    assert out["nested"]["list"] == [{"secret": MASK}, {"ok": 1}]
    assert out["confirm_token"] == MASK
    assert out["tags"] == ["a", "b"] and out["flags"] == ["x"]
    assert out["ratio"] == "inf"
    assert isinstance(out["obj"], str)
    assert "hunter2" not in repr(out) and "t0k3n" not in repr(out) and "s3" not in repr(out)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: PVEAPIToken=root@pam!ci=aaaa-bbbb-cccc", "aaaa-bbbb-cccc"),
        ("Cookie: PVEAuthCookie=PVE:root@pam:ABCDEF::sig", "ABCDEF"),
        ("proxy http://user:p4ss@proxy:3128 failed", "p4ss"),
        ("storage: server=1.2.3.4,password=s3cr3t,user=x", "s3cr3t"),
        ("cifs: password: zzz-top", "zzz-top"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----", "MIIabc"),
        ("api-key=QWERTY in header", "QWERTY"),
    ],
)
def test_redact_text_by_shape(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out and MASK in out
    assert redact({"error": text})["error"] == out


def test_redact_text_keeps_ordinary_text() -> None:
    text = "VM 100 on node pve1: keyboard=de, net0 bridge=vmbr0"
    assert redact_text(text) == text


def test_max_chars() -> None:
    out = redact({"description": "x" * 5000}, max_chars=100)
    assert out["description"].startswith("x" * 100) and "4900 more characters" in out["description"]
