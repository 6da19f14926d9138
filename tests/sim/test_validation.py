"""Parameter validation with PVE's 400 envelope and messages (notes §1.6)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api

pytestmark = pytest.mark.anyio


async def _errors(r: Any) -> dict[str, str]:
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.reason_phrase == "Parameter verification failed."
    body = r.json()
    assert body["data"] is None and body["message"] == "Parameter verification failed.\n"
    errors: dict[str, str] = body["errors"]
    return errors


async def test_missing_required_parameter(shared_admin: Api) -> None:
    r = await shared_admin.post("/nodes/pve1/qemu/100/clone", data={})
    assert await _errors(r) == {"newid": "property is missing and it is not optional"}


async def test_unknown_parameter(shared_admin: Api) -> None:
    r = await shared_admin.get("/cluster/resources", foo="1")
    assert await _errors(r) == {
        "foo": "property is not defined in schema and the schema does not allow additional properties"
    }


async def test_integer_type_check(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/tasks", limit="abc")
    assert await _errors(r) == {"limit": "type check ('integer') failed - got 'abc'"}


async def test_form_booleans_are_1_or_0(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/tasks", errors="true")
    assert await _errors(r) == {"errors": "type check ('boolean') failed - got 'true'"}
    r = await shared_admin.get("/nodes/pve1/tasks", errors="1")
    assert r.status_code == 200


async def test_format_check_precedes_minimum(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/qemu/99/config")
    assert await _errors(r) == {"vmid": "invalid format - value does not look like a valid VM ID\n"}


async def test_configid_format_and_max_length(shared_admin: Api) -> None:
    r = await shared_admin.post("/nodes/pve1/qemu/100/snapshot", data={"snapname": "1abc"})
    errors = await _errors(r)
    assert errors["snapname"].startswith("invalid format - ")
    assert errors["snapname"].endswith("\n")
    r = await shared_admin.post("/nodes/pve1/qemu/100/snapshot", data={"snapname": "a" * 41})
    assert await _errors(r) == {"snapname": "value may only be 40 characters long"}


async def test_enum(shared_admin: Api) -> None:
    for value in ("pool", "network"):
        r = await shared_admin.get("/cluster/resources", type=value)
        assert await _errors(r) == {
            "type": f"value '{value}' does not have a value in the enumeration 'vm, storage, node, sdn'"
        }


async def test_maximum(shared_admin: Api) -> None:
    r = await shared_admin.post("/nodes/pve1/qemu/100/config", data={"background_delay": "31"})
    assert await _errors(r) == {"background_delay": "value must have a maximum value of 30"}


async def test_several_errors_at_once(shared_admin: Api) -> None:
    r = await shared_admin.post("/nodes/pve1/qemu/100/clone", data={"full": "yes", "bogus": "1"})
    errors = await _errors(r)
    assert errors == {
        "newid": "property is missing and it is not optional",
        "full": "type check ('boolean') failed - got 'yes'",
        "bogus": "property is not defined in schema and the schema does not allow additional properties",
    }


async def test_nextid_taken_is_400_with_errors_vmid(shared_admin: Api) -> None:
    assert await shared_admin.data("GET", "/cluster/nextid") == "111"
    assert await shared_admin.data("GET", "/cluster/nextid", params={"vmid": 4321}) == "4321"
    r = await shared_admin.get("/cluster/nextid", vmid="100")
    assert await _errors(r) == {"vmid": "VM 100 already exists"}


async def test_unknown_storage_filter(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/storage", storage="nope")
    assert await _errors(r) == {"storage": "No such storage."}
