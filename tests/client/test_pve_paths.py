"""Path building: untrusted parameter values can never change which endpoint is called."""

from __future__ import annotations

import pytest

from pvemcp.core.pve.errors import PveError
from pvemcp.core.pve.paths import build_path, encode_params, encode_segment, template_params

T = "/nodes/{node}/qemu/{vmid}/status/start"


def test_fills_and_encodes() -> None:
    assert build_path("POST", T, {"node": "pve1", "vmid": 100}) == "/nodes/pve1/qemu/100/status/start"
    assert template_params(T) == ("node", "vmid")


def test_upid_and_volid_keep_pchars_and_encode_the_rest() -> None:
    upid = "UPID:pve1:0000ABCD:00001234:65A1B2C3:qmstart:100:root@pam!mcp:"
    assert encode_segment(upid) == upid  # ':' '@' '!' are legal in a segment
    assert encode_segment("my snap") == "my%20snap"
    assert encode_segment("a?b#c") == "a%3Fb%23c"
    assert encode_segment("ünï") == "%C3%BCn%C3%AF"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("pve1/qemu/100/status/stop", "'/'"),
        ("..", "'..'"),
        (".", "'..'"),
        ("", "empty"),
        ("a\\b", "must not contain '/'"),
        ("%2e%2e", "'%'"),
        ("pve1%2fqemu", "'%'"),
        ("%252f", "'%'"),
        ("pve1\nHost: x", "control"),
        ("pve1\x00", "control"),
        ("pve1\x7f", "control"),
        (" pve1", "whitespace"),
        ("x" * 600, "at most"),
        (True, "string or integer"),
        (1.5, "string or integer"),
        (None, "string or integer"),
        (["a"], "string or integer"),
    ],
)
def test_refused_values(value: object, problem: str) -> None:
    with pytest.raises(PveError) as info:
        build_path("GET", "/nodes/{node}/status", {"node": value})
    err = info.value
    assert err.kind == "params" and err.status is None
    assert "node" in err.errors
    assert problem.strip("'") in err.errors["node"] or problem in err.errors["node"]
    assert "nothing was sent" in err.hint


def test_missing_and_extra_parameters() -> None:
    with pytest.raises(PveError, match="vmid"):
        build_path("POST", T, {"node": "pve1"})
    with pytest.raises(PveError) as info:
        build_path("POST", T, {"node": "pve1", "vmid": 100, "extra": 1})
    assert "extra" in info.value.errors


def test_params_encoding() -> None:
    assert encode_params({"full": True, "start": False, "name": "x", "n": 3, "skip": None}) == [
        ("full", "1"),
        ("start", "0"),
        ("name", "x"),
        ("n", "3"),
    ]
    assert encode_params({"vmid": [100, 101]}) == [("vmid", "100"), ("vmid", "101")]
    with pytest.raises(PveError) as info:
        encode_params({"net0": {"bridge": "vmbr0"}})
    assert "net0" in info.value.errors


CONTENT = "/nodes/{node}/storage/{storage}/content/{volume}"


def test_volume_id_with_slash_goes_to_the_content_tail_encoded() -> None:
    # pve-storage API2/Storage/Status.pm: '{storage}/content' has fragmentDelimiter '' (volids contain '/')
    path = build_path("DELETE", CONTENT, {"node": "pve1", "storage": "local", "volume": "local:vztmpl/x y.tar.zst"})
    assert path == "/nodes/pve1/storage/local/content/local:vztmpl%2Fx%20y.tar.zst"
    assert build_path("GET", CONTENT, {"node": "pve1", "storage": "s", "volume": "s:vm-1-disk-0"}).endswith(
        "/content/s:vm-1-disk-0"
    )


@pytest.mark.parametrize(
    ("volume", "problem"),
    [("local:iso/../../x", "'..'"), ("local:iso//x", "empty"), ("a/%2e", "'%'"), ("a/b\\c", "'\\'")],
)
def test_volume_id_parts_are_still_validated(volume: str, problem: str) -> None:
    with pytest.raises(PveError) as info:
        build_path("DELETE", CONTENT, {"node": "pve1", "storage": "local", "volume": volume})
    assert problem.strip("'") in info.value.errors["volume"]


def test_slash_stays_refused_outside_the_volume_tail() -> None:
    with pytest.raises(PveError):
        build_path(
            "GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", {"node": "pve1", "vmid": 1, "snapname": "a/b"}
        )
    with pytest.raises(PveError):
        build_path("GET", CONTENT, {"node": "pve1/x", "storage": "local", "volume": "local:iso/x.iso"})
