"""Backups: ``POST /nodes/{node}/vzdump`` and the ``/cluster/backup`` job configuration (notes §4.7).

Archives are named as ``PVE::VZDump`` names them — ``vzdump-<qemu|lxc>-<vmid>-<YYYY_MM_DD-HH_MM_SS>`` in
node local time (the simulated nodes run on UTC) plus ``.vma.zst``/``.tar.zst`` etc. — and appear as
``backup`` content of the target storage. The task log has vzdump's ``INFO:`` lines with progress
percentages; a guest that fails is logged as ``ERROR: Backup of VM <id> failed - <reason>``, the job
continues, and the task ends with ``job errors``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator
from typing import Any

from pvemcp.dialect.formats import perl_true
from pvemcp.sim.calendar_event import next_event
from pvemcp.sim.errors import PveHttpError, TaskError, fail, param_error
from pvemcp.sim.handlers.common import guest_alive
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import GIB, ClusterState, Config, Guest, Storage, Volume, archived_config
from pvemcp.sim.tasks import INTERRUPT_SIGNAL, Task, TaskContext, Worker

BACKUP_BYTES_PER_SECOND = 1 * GIB
_COMPRESS_EXT = {"0": "", "1": ".lzo", "lzo": ".lzo", "gzip": ".gz", "zstd": ".zst"}


def _split_ids(text: str | None) -> list[int]:
    return [int(x) for x in re.split(r"[,;\s]+", text or "") if x.isdigit()]


def _stamp(epoch: float, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(epoch))


def _notes(template: str, guest: Guest, node: str, cluster: str) -> str:
    return (
        template.replace("{{guestname}}", guest.name)
        .replace("{{vmid}}", str(guest.vmid))
        .replace("{{node}}", node)
        .replace("{{cluster}}", cluster)
    )


def verify_vzdump_parameters(params: dict[str, Any], check_missing: bool) -> None:
    """pve-manager ``PVE/VZDump.pm`` ``verify_vzdump_parameters``: conflicts (400), ``exclude`` implies ``all``.

    Changes ``params`` like PVE does (``all`` set when ``exclude`` is given without ``pool``).
    """
    if params.get("vmid"):
        for key in ("all", "exclude", "pool"):
            if perl_true(params.get(key)):
                raise param_error({key: "option conflicts with option 'vmid'"})
    if params.get("exclude") is not None and not params.get("pool"):
        params["all"] = 1
    if check_missing and not (perl_true(params.get("all")) or params.get("pool")) and not params.get("vmid"):
        raise param_error({"vmid": "property is missing"})


def _included(state: ClusterState, params: dict[str, Any]) -> dict[str, list[int]]:
    """``get_included_guests``: the selected guests per node; unknown ids under ``''`` (they fail later)."""
    if params.get("pool"):
        pool = str(params["pool"])
        if pool not in state.pools:
            raise fail(f"pool '{pool}' does not exist")
        vmids = sorted(state.pools[pool].vmids)
    elif params.get("vmid"):
        vmids = _split_ids(str(params["vmid"]))
    elif perl_true(params.get("all")):
        excluded = set(_split_ids(str(params.get("exclude") or "")))
        vmids = sorted(v for v in state.guests if v not in excluded)
    else:
        return {}
    per_node: dict[str, list[int]] = {}
    for vmid in vmids:
        guest = state.guests.get(vmid)
        per_node.setdefault(guest.node if guest is not None else "", []).append(vmid)
    return per_node


def _storage_errors(state: ClusterState, storage_id: str) -> str | None:
    """``PVE::VZDump->new`` (in the worker): activating the storage, then ``storage_info``; errors joined."""
    storage = state.storages.get(storage_id)
    errors: list[str] = []
    if storage is None:
        missing = f"storage '{storage_id}' does not exist"
        errors.append(f"could not activate storage '{storage_id}': {missing}")
        errors.append(f"could not get storage information for '{storage_id}': {missing}")
    elif not storage.enabled:
        errors.append(f"could not activate storage '{storage_id}': storage '{storage_id}' is disabled")
        if "backup" not in storage.content:
            wrong = f"can't use storage '{storage_id}' for backups - wrong content type"
            errors.append(f"could not get storage information for '{storage_id}': {wrong}")
    elif "backup" not in storage.content:
        wrong = f"can't use storage '{storage_id}' for backups - wrong content type"
        errors.append(f"could not get storage information for '{storage_id}': {wrong}")
    return "\n".join(errors) or None


@route("POST", "/nodes/{node}/vzdump")
def vzdump(call: Call) -> Task | str:
    """pve-manager ``PVE/API2/VZDump.pm`` ``vzdump``: parameter checks here, storage and guests in the task.

    Guests of other nodes are skipped silently (``OK`` when none is local and ``all`` is not set); unknown
    ids are backed up "locally" and fail there; templates are backed up like any guest.
    """
    state = call.sim.state
    node = call.node
    params = dict(call.params)
    verify_vzdump_parameters(params, True)
    per_node = _included(state, params)
    local = per_node.pop(node, []) + per_node.pop("", [])
    if not local and not perl_true(params.get("all")):
        return "OK"
    storage_id = call.text("storage") or "local"
    mode = call.text("mode", "snapshot") or "snapshot"
    compress = call.text("compress", "0") or "0"
    notes_template = call.text("notes-template")
    protected = call.flag("protected")
    wid = str(local[0]) if len(local) == 1 else ""

    def worker(ctx: TaskContext) -> Worker:
        errors_text = _storage_errors(state, storage_id)
        if errors_text is not None:
            raise TaskError(errors_text.replace("\n", " "))
        storage = state.storages[storage_id]
        opts = f"--mode {mode} --storage {storage_id}"
        if compress != "0":
            opts += f" --compress {compress}"
        if notes_template:
            opts += f" --notes-template '{notes_template}'"
        ids = " ".join(str(v) for v in local) if not perl_true(params.get("all")) else "--all 1"
        ctx.log(f"INFO: starting new backup job: vzdump {ids} {opts} --node {node}")
        errors = 0
        for vmid in local:
            guest = state.guests.get(vmid)
            if guest is None:
                ctx.log(f"ERROR: Backup of VM {vmid} failed - unable to find VM '{vmid}'")
                errors += 1
                continue
            ok = yield from _backup_one(ctx, state, guest, storage, mode, compress, notes_template, protected, node)
            if not ok:
                errors += 1
        if errors:
            raise TaskError("job errors")
        ctx.log("INFO: Backup job finished successfully")

    return call.sim.tasks.start(node, "vzdump", wid, call.ident.authid, worker, interrupt_text=INTERRUPT_SIGNAL)


def _backup_one(
    ctx: TaskContext,
    state: ClusterState,
    guest: Guest,
    storage: Storage,
    mode: str,
    compress: str,
    notes_template: str | None,
    protected: bool,
    node: str,
) -> Generator[float, None, bool]:
    """Back up one guest; returns False (after logging vzdump's ERROR line) when it failed."""
    vmid = guest.vmid
    start = ctx.now()
    started = ctx.elapsed()
    ctx.log(f"INFO: Starting Backup of VM {vmid} ({guest.type})")
    ctx.log(f"INFO: Backup started at {_stamp(start, '%Y-%m-%d %H:%M:%S')}")
    ctx.log(f"INFO: status = {guest.status}")
    if guest.lock:
        ctx.log(f"ERROR: Backup of VM {vmid} failed - {guest.kind} is locked ({guest.lock})")
        return False
    ctx.log(f"INFO: backup mode: {mode}")
    ctx.log("INFO: ionice priority: 7")
    guest.config["lock"] = "backup"
    state.touch()
    stamp = _stamp(start, "%Y_%m_%d-%H_%M_%S")
    ext = ("vma" if guest.type == "qemu" else "tar") + _COMPRESS_EXT.get(compress, "")
    fname = f"vzdump-{guest.type}-{vmid}-{stamp}.{ext}"
    path = str(storage.options.get("path", "/var/lib/vz"))
    size = max(1, int(guest.maxdisk * 0.31))
    try:
        if guest.type == "qemu":
            ctx.log(f"INFO: creating vzdump archive '{path}/dump/{fname}'")
            ctx.log("INFO: started backup task '" + state.new_uuid() + "'")
            seconds = max(1.0, size / BACKUP_BYTES_PER_SECOND)
            for pct in (25, 50, 75, 100):
                yield seconds / 4
                done = guest.maxdisk * pct / 100
                ctx.log(
                    f"INFO: {pct:3d}% ({done / GIB:.1f} GiB of {guest.maxdisk / GIB:.1f} GiB) in "
                    f"{int(seconds * pct / 100)}s, read: 1.0 GiB/s, write: 1.0 GiB/s"
                )
            ctx.log("INFO: backup is sparse: 70% (total) zero data")
            ctx.log(f"INFO: transferred {guest.maxdisk / GIB:.2f} GiB in {int(seconds)} seconds")
        else:
            if mode == "snapshot":
                ctx.log("INFO: create storage snapshot 'vzdump'")
            ctx.log(f"INFO: creating vzdump archive '{path}/dump/{fname}'")
            seconds = max(1.0, size / BACKUP_BYTES_PER_SECOND)
            yield seconds
            ctx.log(f"INFO: Total bytes written: {size} ({size / GIB:.2f}GiB, 1.0GiB/s)")
            if mode == "snapshot":
                ctx.log("INFO: cleanup temporary 'vzdump' snapshot")
        if not guest_alive(state, guest):
            ctx.log(f"ERROR: Backup of VM {vmid} failed - {guest.kind} {vmid} was removed")
            return False
        ctx.log(f"INFO: archive file size: {size / GIB:.2f}GB")
        notes = _notes(notes_template, guest, node, state.cluster_name) if notes_template else None
        if notes is not None:
            ctx.log("INFO: adding notes to backup")
        if protected:
            ctx.log("INFO: marking backup as protected")
        state.add_volume(
            Volume(
                f"{storage.storage}:backup/{fname}",
                storage.storage,
                "backup",
                ext,
                size,
                int(start),
                node=None if storage.shared else node,
                vmid=vmid,
                notes=notes,
                protected=protected,
                subtype=guest.type,
                guest_config=archived_config(guest),
            )
        )
        elapsed = int(ctx.elapsed() - started)
        ctx.log(
            f"INFO: Finished Backup of VM {vmid} ({elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d})"
        )
        ctx.log(f"INFO: Backup finished at {_stamp(ctx.now(), '%Y-%m-%d %H:%M:%S')}")
        return True
    finally:
        if guest.config.get("lock") == "backup":
            guest.config.pop("lock", None)
            state.touch()


# ---------------------------------------------------------------------------------------------- jobs

_JOB_META = frozenset({"id", "delete", "digest"})


def _next_run(state: ClusterState, job: Config) -> int | None:
    """``next-run`` as ``PVE/API2/Backup.pm`` ``index`` computes it: the schedule's next event after now.

    PVE computes it for every job with a schedule, enabled or not.
    """
    schedule = job.get("schedule")
    if not schedule:
        return None
    return next_event(str(schedule), state.clock.now())


def _job_entry(state: ClusterState, job_id: str, job: Config) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": job_id, **job}
    nxt = _next_run(state, job)
    if nxt is not None:
        entry["next-run"] = nxt
    return entry


@route("GET", "/cluster/backup")
def backup_jobs(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    return [_job_entry(state, k, v) for k, v in state.backup_jobs.items()]


def _no_such_job(job_id: str) -> PveHttpError:
    """``read_job``/``delete_job``: ``raise_param_exc({ id => "No such job '…'" })``."""
    return param_error({"id": f"No such job '{job_id}'"})


@route("GET", "/cluster/backup/{id}")
def backup_job_get(call: Call) -> dict[str, Any]:
    state = call.sim.state
    job_id = call.req("id")
    job = state.backup_jobs.get(job_id)
    if job is None:
        raise _no_such_job(job_id)
    return {"id": job_id, **job}


def _schedule_param_check(params: dict[str, Any], required: bool) -> None:
    """``$schedule_param_check``: ``schedule`` xor ``starttime`` (+``dow``), converted to a schedule."""
    if params.get("schedule") is not None:
        if params.get("starttime") is not None:
            raise param_error({"starttime": "'starttime' and 'schedule' cannot both be set"})
    elif params.get("starttime") is None:
        if required:
            raise param_error({"schedule": "neither 'starttime' nor 'schedule' were set"})
    else:
        dow = ",".join(re.split(r"[,;\s]+", str(params.get("dow") or "")))
        all_days = "mon,tue,wed,thu,fri,sat,sun"
        starttime = str(params["starttime"])
        params["schedule"] = starttime if dow.strip(",") in ("", all_days) else f"{dow} {starttime}"
    params.pop("starttime", None)
    params.pop("dow", None)


def _job_values(params: dict[str, Any]) -> Config:
    out: Config = {}
    for k, v in params.items():
        if k in _JOB_META:
            continue
        out[k] = int(v) if isinstance(v, bool) else v
    return out


@route("POST", "/cluster/backup")
def backup_job_create(call: Call) -> None:
    """``create_job`` (pve-manager ``PVE/API2/Backup.pm``)."""
    state = call.sim.state
    params = dict(call.params)
    pool = params.get("pool")
    if pool and pool not in state.pools:
        raise fail(f"pool '{pool}' does not exist")
    _schedule_param_check(params, True)
    params.setdefault("enabled", 1)
    job_id = call.text("id")
    if job_id is None:
        job_id = state.new_uuid()
    if job_id in state.backup_jobs:
        raise fail(f"Job '{job_id}' already exists")
    verify_vzdump_parameters(params, True)
    state.backup_jobs[job_id] = {"type": "vzdump", **_job_values(params)}
    state.touch()
    return None


# keys a job update may delete beyond vzdump's own options (``update_job`` ``$deletable``)
_DELETABLE = frozenset({"comment", "repeat-missed"})


@route("PUT", "/cluster/backup/{id}")
def backup_job_update(call: Call) -> None:
    """``update_job``: the selection keys exclude each other — the one given wins, the others are dropped."""
    state = call.sim.state
    job_id = call.req("id")
    params = dict(call.params)
    deletes = [k for k in re.split(r"[,;\s]+", call.text("delete") or "") if k]
    pool = params.get("pool")
    if pool and pool not in state.pools:
        raise fail(f"pool '{pool}' does not exist")
    _schedule_param_check(params, False)
    values = _job_values(params)
    if not values and not deletes:
        raise fail("no options specified")
    verify_vzdump_parameters(dict(values), False)
    job = state.backup_jobs.get(job_id)
    if job is None:
        raise fail("no such vzdump job")
    updated = dict(job)
    schema = call.sim.spec.operation(call.key).input_schema.get("properties", {})
    for key in deletes:
        if (key not in schema or key in _JOB_META or key in ("starttime", "dow")) and key not in _DELETABLE:
            raise param_error({"delete": f"unknown option '{key}'"})
        updated.pop(key, None)
    updated.update(values)
    if updated.get("exclude") is not None and not updated.get("pool"):
        updated["all"] = 1
    if values.get("vmid") is not None:
        for key in ("all", "exclude", "pool"):
            updated.pop(key, None)
    elif perl_true(values.get("all")):
        updated.pop("vmid", None)
        updated.pop("pool", None)
    elif updated.get("pool"):
        for key in ("vmid", "all", "exclude"):
            updated.pop(key, None)
    verify_vzdump_parameters(updated, True)
    state.backup_jobs[job_id] = updated
    state.touch()
    return None


@route("DELETE", "/cluster/backup/{id}")
def backup_job_delete(call: Call) -> None:
    state = call.sim.state
    job_id = call.req("id")
    if job_id not in state.backup_jobs:
        raise _no_such_job(job_id)
    del state.backup_jobs[job_id]
    state.touch()
    return None
