"""The guest index's compact entries (dialect/compact.py): read-only mappings that behave like the dicts
they replace, share one key layout per key sequence, and are what the index keeps."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.dialect.compact import CompactObject, compact_object_hook

from .test_pve_resolve_unit import CFG, Cluster

ENTRY: dict[str, Any] = {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "cpu": 0.25, "template": 0}


def decode(document: Any) -> Any:
    return json.loads(json.dumps(document), object_hook=compact_object_hook())


def test_an_entry_reads_like_the_dict_it_came_from() -> None:
    entry = decode(ENTRY)
    assert isinstance(entry, CompactObject)
    assert entry == ENTRY and dict(entry) == ENTRY
    assert list(entry) == list(ENTRY) and len(entry) == len(ENTRY)
    assert entry["node"] == "pve1" and entry.get("cpu") == 0.25
    assert entry.get("pool") is None and entry.get("pool", "-") == "-"
    assert "vmid" in entry and "pool" not in entry
    assert {**entry, "type": "lxc"} == {**ENTRY, "type": "lxc"}
    with pytest.raises(KeyError):
        entry["pool"]
    with pytest.raises(TypeError):
        entry["node"] = "pve2"  # type: ignore[index]  # read-only: the index shares its entries
    assert "pve1" in repr(entry)


def test_entries_share_their_layout_and_repeated_texts() -> None:
    second = {**ENTRY, "id": "qemu/101", "vmid": 101}
    other_keys = {"type": "lxc", "vmid": 102, "node": "pve1"}
    first, again, third = decode([ENTRY, second, other_keys])
    assert first._layout is again._layout  # one layout per key sequence
    assert third._layout is not first._layout and third == other_keys
    assert first["node"] is again["node"] is third["node"]  # one copy of a repeated text


def test_nested_objects_and_the_envelope_are_mappings_too() -> None:
    envelope = decode({"data": [ENTRY], "total": 1, "extra": {"a": [1, {"b": 2}]}})
    assert envelope["data"][0] == ENTRY
    assert envelope["extra"]["a"][1]["b"] == 2
    assert envelope.get("total") == 1


@pytest.mark.anyio
async def test_the_guest_index_keeps_compact_entries() -> None:
    cluster = Cluster()
    async with PveClient(CFG, transport=httpx2.MockTransport(cluster.handler)) as pve:
        entries = await pve.guest_entries()
        assert all(isinstance(e, CompactObject) for e in entries)
        assert [e["vmid"] for e in entries] == [100, 101, 9000]  # guests only, by vmid
        assert entries[0] == cluster.resources[0]
        # other answers keep ordinary dicts: only the index asks for compact objects
        data = await pve.get("/cluster/resources", params={"type": "vm"})
        assert type(data[0]) is dict


@pytest.mark.anyio
async def test_a_non_envelope_answer_is_still_refused_with_a_hook() -> None:
    async with PveClient(CFG, transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=[1]))) as pve:
        with pytest.raises(Exception, match="not a Proxmox API envelope"):
            await pve.get("/cluster/resources", params={"type": "vm"}, object_hook=compact_object_hook())


def _only_plain_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_only_plain_json(v) for v in value)
    return not isinstance(value, CompactObject)


def test_the_spec_is_kept_compact_but_hands_out_plain_json() -> None:
    """The API schema is parsed into compact objects; every operation it builds is dicts and lists only,
    so validators and ``json.dumps`` (which accepts only dicts) take its schemas as before."""
    from pvemcp.dialect.compact import thaw
    from pvemcp.dialect.model import load_spec

    spec = load_spec()
    assert isinstance(spec._paths, CompactObject)
    for key in ("POST /nodes/{node}/qemu", "GET /cluster/resources", "PUT /nodes/{node}/lxc/{vmid}/config"):
        op = spec.operation(key)
        for part in (op.input_schema, op.output_schema, op.permissions):
            assert _only_plain_json(part), key
        json.dumps(op.input_schema)
    assert thaw(decode({"a": [{"b": 1}], "c": "d"})) == {"a": [{"b": 1}], "c": "d"}
    assert type(thaw(decode({"a": {"b": 1}}))["a"]) is dict
