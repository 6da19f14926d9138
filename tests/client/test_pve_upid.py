"""UPID parsing: real UPIDs from recorded PVE answers parse; the malformed mocks of public repos do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvemcp.dialect.upid import Upid, is_upid, parse_upid, split_tokenid

REAL = [
    # go-proxmox__DELETE_lxc_vmid.json
    "UPID:node1:0031B740:0645340C:23E5BA99:vzdestroy:101:root@pam:",
    # community.proxmox__GET_nodes_node_tasks__pve64.json
    "UPID:iaclab-01-01:00000DD3:1C419D88:6119FB65:srvreload:networking:root@pam:",
    # community.proxmox__GET_task_status__vzdump__edited.json
    "UPID:node1:003F8C63:1E7FB79C:67449780:vzdump:100:root@pam:",
]


def test_real_upid_fields() -> None:
    u = parse_upid("UPID:node1:0031B740:0645340C:23E5BA99:vzdestroy:101:root@pam:")
    assert u == Upid(
        upid="UPID:node1:0031B740:0645340C:23E5BA99:vzdestroy:101:root@pam:",
        node="node1",
        pid=0x0031B740,
        pstart=0x0645340C,
        starttime=0x23E5BA99,
        type="vzdestroy",
        id="101",
        user="root@pam",
    )
    assert u.userid == "root@pam" and u.tokenid is None
    assert str(u) == u.upid


@pytest.mark.parametrize("text", REAL)
def test_real_upids_parse(text: str) -> None:
    assert parse_upid(text).upid == text
    assert is_upid(text)


def test_upids_from_recorded_fixtures(shared_dir: Path) -> None:
    fixtures = shared_dir / "pve-fixtures"
    delete = json.loads((fixtures / "go-proxmox__DELETE_lxc_vmid.json").read_text())
    assert parse_upid(delete["data"]).type == "vzdestroy"
    tasks = json.loads((fixtures / "community.proxmox__GET_nodes_node_tasks__pve64.json").read_text())
    parsed = [parse_upid(entry["upid"]) for entry in tasks["data"]]
    assert parsed and all(p.node == "iaclab-01-01" for p in parsed)
    for entry, p in zip(tasks["data"], parsed, strict=True):
        # the task list repeats the decoded fields; they must agree with our decoding
        assert p.type == entry["type"] and p.id == entry["id"]
        assert p.starttime == entry["starttime"] and p.pid == entry["pid"]


def test_empty_id_nine_hex_pstart_and_token_user() -> None:
    u = parse_upid("UPID:pve:000ABCDE:1A2B3C4D5:65A1B2C3:vzdump::root@pam!mcp:")
    assert u.id == "" and u.pstart == 0x1A2B3C4D5
    assert u.user == "root@pam!mcp" and u.userid == "root@pam" and u.tokenid == "mcp"


@pytest.mark.parametrize(
    "text",
    [
        # go-proxmox pve8x/pve9x mocks (pve-api-behavior.md §5): missing the empty id field
        "UPID:node1:00001234:00005678:12345678:vzdump:root@pam:",
        # ... and no realm, no trailing colon
        "UPID:node1:00001234:00005678:12345678:vzstart:101:root",
        "UPID:node1:00001234:00005678:12345678:vzstart:101:root@pam",  # no trailing colon
        "UPID:node1:0001234:00005678:12345678:qmstart:100:root@pam:",  # pid 7 hex
        "UPID:node1:00001234:1234567890:12345678:qmstart:100:root@pam:",  # pstart 10 hex
        "UPID:node1:00001234:00005678:1234567:qmstart:100:root@pam:",  # starttime 7 hex
        "UPID:-node:00001234:00005678:12345678:qmstart:100:root@pam:",  # bad node name
        "UPID:node1:00001234:00005678:12345678::100:root@pam:",  # empty type
        "UPID:node1:00001234:00005678:12345678:qmstart:100::",  # empty user
        "UPID:node1:00001234:00005678:12345678:qm/start:100:root@pam:",  # slash
        "UPID:node1:0000123G:00005678:12345678:qmstart:100:root@pam:",  # not hex
        "UPID:node1:00001234:00005678:12345678:qmstart:100:root@pam:\n",  # trailing newline
        "upid:node1:00001234:00005678:12345678:qmstart:100:root@pam:",  # prefix case
        "",
    ],
)
def test_malformed_upids_are_refused(text: str) -> None:
    assert not is_upid(text)
    with pytest.raises(ValueError, match="not a valid UPID"):
        parse_upid(text)


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_upid(None)  # type: ignore[arg-type]
    assert not is_upid(42)


@pytest.mark.parametrize(
    ("authid", "expected"),
    [
        ("root@pam!mcp", ("root@pam", "mcp")),
        ("root@pam", ("root@pam", None)),
        # PVE's user names may hold "!" ($user_regex is [^\s:/]+): the token is after the realm
        ("a!b@pve!tok", ("a!b@pve", "tok")),
        # not a whole user@realm!token (a token name starts with a letter, like a realm): not split
        ("root@pam!", ("root@pam!", None)),
        ("root@pam!1x", ("root@pam!1x", None)),
        ("root!tok", ("root!tok", None)),
    ],
)
def test_split_tokenid_as_pve_access_control(authid: str, expected: tuple[str, str | None]) -> None:
    assert split_tokenid(authid) == expected


def test_encode_is_the_inverse_of_parse() -> None:
    text = "UPID:pve:000ABCDE:1A2B3C4D5:65A1B2C3:vzdump::root@pam!mcp:"
    u = parse_upid(text)
    assert Upid.encode(u.node, u.pid, u.pstart, u.starttime, u.type, u.id, u.user) == u
