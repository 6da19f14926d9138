"""The plan a confirmation binds: its digest, its objects' labels, the question rendered from it."""

from __future__ import annotations

from types import SimpleNamespace

from pvemcp.core.policy.risk_class import Risk
from pvemcp.core.policy.scope import Scope
from pvemcp.core.pve.resolve import GuestRef
from pvemcp.core.tools.base import Plan, PlannedCall, PlanObject
from pvemcp.core.tools.objects import render_question, scoped_view, visible_in_scope

STOP = "/nodes/{node}/qemu/{vmid}/status/stop"


def _guest(vmid: int) -> GuestRef:
    return GuestRef(
        vmid=vmid, node="pve1", type="qemu", name=None, status="stopped", template=False, tags=(), pool=None
    )


def plan(*objects: PlanObject, vmid: int = 106, args: dict[str, object] | None = None) -> Plan:
    call = PlannedCall("POST", STOP, {"node": "pve1", "vmid": vmid}, args or {}, True)
    return Plan(calls=[call], risk=Risk.DESTRUCTIVE, objects=list(objects))


GUEST = PlanObject("guest", "106", {"name": "ci-runner", "node": "pve1", "type": "qemu", "state": "running"})


def test_digest_is_canonical_and_covers_requests_targets_and_state() -> None:
    same = PlanObject("guest", "106", {"state": "running", "type": "qemu", "node": "pve1", "name": "ci-runner"})
    assert plan(GUEST).digest() == plan(same).digest()  # key order does not matter
    assert plan(GUEST).digest() != plan(GUEST, vmid=105).digest()  # another request
    stopped = PlanObject("guest", "106", {**GUEST.facts, "state": "stopped"})
    assert plan(GUEST).digest() != plan(stopped).digest()  # the target changed state
    other = PlanObject("guest", "105", {"name": "dev-box"})
    assert plan(GUEST).digest() != plan(GUEST, other).digest()  # one more target


def test_labels_name_what_the_user_needs() -> None:
    assert GUEST.label() == "VM 106 (ci-runner) on pve1, currently running"
    job = PlanObject("backup_job", "j1", {"selection": "all guests", "schedule": "sat 03:00"})
    assert job.label() == "backup job j1 (selection all guests; schedule sat 03:00)"


def test_question_names_action_targets_parameters_and_consequence() -> None:
    generic = SimpleNamespace(per_call_risk=True, title="", consequence="", batch=False)
    text = render_question(generic, plan(GUEST, args={"timeout": 30}))
    assert text.startswith("POST /nodes/pve1/qemu/106/status/stop: VM 106 (ci-runner) on pve1, currently running")
    assert "timeout=30" in text and "unsaved data in the guest is lost" in text
    secret = render_question(generic, plan(GUEST, args={"password": "hunter2"}))
    assert "hunter2" not in secret


def test_visible_in_scope_reads_guests_volumes_tasks_and_nodes() -> None:
    scope = Scope(vmid_ranges=((100, 199),), nodes=frozenset({"pve1"}))
    inv = {106: _guest(106), 600: _guest(600)}
    assert visible_in_scope(scope, inv, {"vmid": 106, "type": "qemu", "node": "pve1"})
    assert not visible_in_scope(scope, inv, {"vmid": 600, "type": "qemu", "node": "pve1"})
    assert not visible_in_scope(scope, inv, {"volid": "local-lvm:vm-600-disk-0"})
    assert visible_in_scope(scope, inv, {"volid": "local:iso/debian.iso"})
    assert not visible_in_scope(scope, inv, {"upid": "UPID:pve1:00001234:00005678:6A000000:qmstart:600:root@pam:"})
    assert not visible_in_scope(scope, inv, {"type": "node", "node": "pve2"})
    assert visible_in_scope(Scope(), inv, {"vmid": 600})


def test_scoped_view_filters_lists_and_the_lists_inside_an_object() -> None:
    scope = Scope(vmid_ranges=((100, 199),))
    inv = {106: _guest(106), 600: _guest(600)}
    pool = {"poolid": "p", "members": [{"vmid": 106, "type": "qemu"}, {"vmid": 600, "type": "qemu"}]}
    view, hidden = scoped_view(scope, inv, pool)
    assert view == {"poolid": "p", "members": [{"vmid": 106, "type": "qemu"}]} and hidden == 1
    ha = [{"sid": "vm:106"}, {"sid": "ct:600"}, {"guest": 600, "id": "600-0"}]
    assert scoped_view(scope, inv, ha) == ([{"sid": "vm:106"}], 2)
    assert scoped_view(Scope(), inv, ha) == (ha, 0)
