"""Routing as PVE routes: decoded path, empty fragments skipped, volume ids with ``/`` in the content tail.

pve-http-server ``APIServer/AnyEvent.pm`` decodes the whole path (``uri_unescape``) before
pve-common ``RESTHandler.pm`` ``find_handler``/``map_path_to_methods`` split it; pve-storage
``API2/Storage/Status.pm`` registers ``{storage}/content`` with ``fragmentDelimiter => ''`` so the rest
of the path is the ``{volume}`` parameter.
"""

from __future__ import annotations

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

TEMPLATE = "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz"


@pytest.mark.parametrize("sep", ["/", "%2F"])
async def test_volume_id_with_slash_reaches_the_volume_handler(sim: RunningSimulator, admin: Api, sep: str) -> None:
    tail = TEMPLATE.replace("/", sep)
    r = await admin.get(f"/nodes/pve1/storage/local/content/{tail}")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["format"] == "txz"
    r = await admin.delete(f"/nodes/pve1/storage/local/content/{tail}")
    assert r.status_code == 200, r.text
    status = await admin.wait_task(r.json()["data"])
    assert status["exitstatus"] == "OK"
    assert f"Removed volume '{TEMPLATE}'" in await admin.log(r.json()["data"])
    listing = await admin.data("GET", "/nodes/pve1/storage/local/content", params={"content": "vztmpl"})
    assert TEMPLATE not in [v["volid"] for v in listing]
    # only pve1's copy of the local template went away
    other = await admin.data("GET", "/nodes/pve2/storage/local/content", params={"content": "vztmpl"})
    assert TEMPLATE in [v["volid"] for v in other]


async def test_bare_volume_name_with_slash_takes_the_path_storage(admin: Api) -> None:
    r = await admin.get("/nodes/pve1/storage/local/content/vztmpl/alpine-3.22-default_20250617_amd64.tar.xz")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["path"] == "/var/lib/vz/template/cache/alpine-3.22-default_20250617_amd64.tar.xz"


async def test_encoded_slash_elsewhere_is_a_separator(admin: Api) -> None:
    r = await admin.get("/nodes/pve1%2Fqemu")
    assert r.status_code == 200 and any(g["vmid"] == 100 for g in r.json()["data"])
