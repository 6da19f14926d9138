"""Unit tests of the door's small parts: bearer tokens, host parsing, pending questions, privileges, snippets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pvemcp.door import confirm
from pvemcp.door.auth import (
    AuthConfigError,
    BearerTokens,
    StaticTokenVerifier,
    is_loopback,
    load_bearer_tokens,
)
from pvemcp.door.check import NO, PARTLY, YES, permission_level
from pvemcp.door.demo import client_snippets
from pvemcp.door.transports import HttpConfigError, HttpSettings, parse_hostport

TOKEN = "a-long-enough-bearer-token-123456"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        (":9000", ("127.0.0.1", 9000)),
        ("localhost", ("localhost", 8765)),
        ("[::1]:8080", ("::1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:http", "::1:80", "[::1:80", "127.0.0.1:70000"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(HttpConfigError):
        parse_hostport(text)


def test_loopback_without_token_is_fine_and_protected() -> None:
    settings = HttpSettings(host="127.0.0.1", port=0)
    security = settings.transport_security()
    assert security.enable_dns_rebinding_protection
    assert "evil.example:*" not in security.allowed_hosts


def test_extra_allowed_hosts_from_env() -> None:
    tokens = BearerTokens.from_mapping({"ops": TOKEN})
    settings = HttpSettings.from_env(
        "0.0.0.0", 8765, tokens, env={"PVEMCP_HTTP_ALLOWED_HOSTS": "mcp.lan, mcp.example:443"}
    )
    security = settings.transport_security()
    assert "mcp.lan:*" in security.allowed_hosts and "mcp.example:443" in security.allowed_hosts
    assert "https://mcp.example:443" in security.allowed_origins
    assert "0.0.0.0:*" not in security.allowed_hosts


@pytest.mark.anyio
async def test_bearer_tokens_constant_time_and_redacted() -> None:
    tokens = BearerTokens.from_mapping({"alice": TOKEN, "bob": TOKEN + "-bob"})
    assert tokens.caller_for(TOKEN) == "alice"
    assert tokens.caller_for(TOKEN + "-bob") == "bob"
    assert tokens.caller_for(TOKEN[:-1]) is None
    assert tokens.caller_for("") is None
    assert TOKEN not in repr(tokens)
    verified = await StaticTokenVerifier(tokens).verify_token(TOKEN)
    assert verified is not None and verified.client_id == "alice" and verified.subject == "alice"
    assert TOKEN not in verified.model_dump_json()
    assert await StaticTokenVerifier(tokens).verify_token("nope") is None


def test_load_bearer_tokens(tmp_path: Path) -> None:
    assert load_bearer_tokens({}) is None
    single = load_bearer_tokens({"PVEMCP_HTTP_TOKEN": TOKEN})
    assert single is not None and single.caller_for(TOKEN) == "http-bearer"
    bare = tmp_path / "bare"
    bare.write_text(f"\n{TOKEN}\n")
    from_file = load_bearer_tokens({"PVEMCP_HTTP_TOKEN_FILE": str(bare)})
    assert from_file is not None and from_file.caller_for(TOKEN) == "http-bearer"
    named = tmp_path / "named"
    named.write_text(f"# comment\nalice {TOKEN}\n")
    by_name = load_bearer_tokens({"PVEMCP_HTTP_TOKEN_FILE": str(named)})
    assert by_name is not None and by_name.caller_for(TOKEN) == "alice"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PVEMCP_HTTP_TOKEN": "short"}, "16-512"),
        ({"PVEMCP_HTTP_TOKEN": TOKEN, "PVEMCP_HTTP_TOKEN_FILE": "/x"}, "not both"),
        ({"PVEMCP_HTTP_TOKEN_FILE": "/nonexistent/tokens"}, "cannot read"),
    ],
)
def test_bad_token_config(env: dict[str, str], needle: str) -> None:
    with pytest.raises(AuthConfigError, match=needle) as info:
        load_bearer_tokens(env)
    assert TOKEN not in str(info.value)


def test_bad_token_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice {TOKEN}\nalice {TOKEN}x\n")
    with pytest.raises(AuthConfigError, match="twice"):
        load_bearer_tokens({"PVEMCP_HTTP_TOKEN_FILE": str(path)})
    path.write_text(f"alice {TOKEN} extra\nbob {TOKEN}\n")
    with pytest.raises(AuthConfigError, match="NAME TOKEN"):
        load_bearer_tokens({"PVEMCP_HTTP_TOKEN_FILE": str(path)})


def _mint(store: confirm.PendingQuestions, args: dict[str, Any], caller: str = "alice") -> str:
    return store.mint(
        tool="guest_stop",
        wire_arguments=args,
        caller=caller,
        question="Stop?",
        confirm_tool="guest_stop",
        confirm_arguments=args,
    )


def test_pending_questions_are_single_use_and_bound() -> None:
    from mcp.shared.exceptions import MCPError

    store = confirm.PendingQuestions()
    state = _mint(store, {"vmid": 100})
    assert state.startswith(confirm.STATE_PREFIX)
    with pytest.raises(MCPError):
        store.take(state, tool="guest_stop", wire_arguments={"vmid": 101}, caller="alice")
    # a mismatching probe burns the question
    with pytest.raises(MCPError):
        store.take(state, tool="guest_stop", wire_arguments={"vmid": 100}, caller="alice")
    state = _mint(store, {"vmid": 100})
    with pytest.raises(MCPError):
        store.take(state, tool="guest_stop", wire_arguments={"vmid": 100}, caller="mallory")
    state = _mint(store, {"vmid": 100, "node": "pve1"})
    pending = store.take(state, tool="guest_stop", wire_arguments={"node": "pve1", "vmid": 100}, caller="alice")
    assert pending.confirm_arguments == {"vmid": 100, "node": "pve1"}
    with pytest.raises(MCPError):
        store.take(state, tool="guest_stop", wire_arguments={"node": "pve1", "vmid": 100}, caller="alice")
    assert len(store) == 0


def test_pending_questions_expire_and_are_bounded() -> None:
    from mcp.shared.exceptions import MCPError

    expired = confirm.PendingQuestions(ttl_s=-1)
    state = _mint(expired, {"vmid": 100})
    with pytest.raises(confirm.QuestionExpired) as late:  # a late answer is told "expired", once
        expired.take(state, tool="guest_stop", wire_arguments={"vmid": 100}, caller="alice")
    assert late.value.pending.confirm_arguments == {"vmid": 100}
    with pytest.raises(MCPError):
        expired.take(state, tool="guest_stop", wire_arguments={"vmid": 100}, caller="alice")
    small = confirm.PendingQuestions(max_pending=3)
    states = [_mint(small, {"vmid": v}) for v in range(100, 105)]
    assert len(small) == 3
    with pytest.raises(MCPError):
        small.take(states[0], tool="guest_stop", wire_arguments={"vmid": 100}, caller="alice")
    assert small.take(states[-1], tool="guest_stop", wire_arguments={"vmid": 104}, caller="alice")


def test_answer_of() -> None:
    import mcp_types as types

    assert confirm.answer_of(types.ElicitResult(action="accept", content={"confirm": True})) == "accept"
    assert confirm.answer_of(types.ElicitResult(action="accept", content={"confirm": "true"})) == "decline"
    assert confirm.answer_of(types.ElicitResult(action="accept", content={})) == "decline"
    assert confirm.answer_of(types.ElicitResult(action="accept")) == "decline"
    assert confirm.answer_of(types.ElicitResult(action="decline")) == "decline"
    assert confirm.answer_of(types.ElicitResult(action="cancel")) == "cancel"
    assert confirm.answer_of(types.ListRootsResult(roots=[])) == "cancel"
    assert confirm.answer_of(None) == "cancel"


PRIVS = {"/": {"Sys.Audit": 1}, "/vms/100": {"VM.PowerMgmt": 1}, "/storage": {"Datastore.Audit": 1}}


@pytest.mark.parametrize(
    ("rule", "level"),
    [
        ({"user": "all"}, YES),
        ({"check": ["perm", "/", ["Sys.Audit"]]}, YES),
        ({"check": ["perm", "/", ["Sys.Modify"]]}, NO),
        ({"check": ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]]}, PARTLY),
        ({"check": ["perm", "/vms/{vmid}", ["VM.Allocate"]]}, NO),
        ({"check": ["perm", "/storage/{storage}", ["Datastore.Audit", "Datastore.AllocateSpace"], "any", 1]}, YES),
        ({"check": ["perm", "/storage/{storage}", ["Datastore.Audit", "Datastore.AllocateSpace"]]}, NO),
        ({"check": ["and", ["perm", "/", ["Sys.Audit"]], ["perm", "/", ["Sys.Modify"]]]}, NO),
        ({"check": ["or", ["perm", "/", ["Sys.Modify"]], ["perm", "/", ["Sys.Audit"]]]}, YES),
        ({"check": ["userid-param", "self"]}, YES),
        (None, NO),
    ],
)
def test_permission_level(rule: dict[str, Any] | None, level: int) -> None:
    privs = {path: set(entry) for path, entry in PRIVS.items()}
    assert permission_level(rule, privs, "auditor@pve!ro") == level


def test_root_only_operations() -> None:
    assert permission_level(None, {}, "root@pam") == YES
    assert permission_level(None, {}, "root@pam!token") == NO


def test_client_snippets_are_valid_json_and_never_hold_the_token() -> None:
    text = client_snippets("http://127.0.0.1:8765/mcp", with_token=True)
    assert TOKEN not in text and "${PVEMCP_HTTP_TOKEN}" in text
    blocks = _json_blocks(text)
    assert len(blocks) == 3
    assert blocks[0]["mcpServers"]["pvemcp"]["url"] == "http://127.0.0.1:8765/mcp"
    assert blocks[1]["servers"]["pvemcp"]["type"] == "http"
    plain = client_snippets("http://127.0.0.1:8765/mcp", with_token=False)
    assert "Authorization" not in plain


def _json_blocks(text: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("  ") and (current or line.strip() == "{"):
            current.append(line)
            if line == "  }":
                blocks.append(json.loads("\n".join(current)))
                current = []
    return blocks
