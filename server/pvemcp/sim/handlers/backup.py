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

from pvemcp.sim.errors import TaskError, fail
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


def _selected(call: Call, state: ClusterState) -> list[int]:
    vmids = _split_ids(call.text("vmid"))
    pool = call.text("pool")
    if pool:
        if pool not in state.pools:
            raise fail(f"pool '{pool}' does not exist")
        vmids += sorted(state.pools[pool].vmids)
    if call.flag("all"):
        excluded = set(_split_ids(call.text("exclude")))
        vmids = sorted(v for v in state.guests if v not in excluded)
    return sorted(set(vmids))


@route("POST", "/nodes/{node}/vzdump")
def vzdump(call: Call) -> Task | str:
    state = call.sim.state
    node = call.node
    if not (call.text("vmid") or call.flag("all") or call.text("pool")):
        raise fail("No guests selected, please use either 'all', 'vmid' or 'pool'")
    vmids = _selected(call, state)
    for vmid in vmids:
        if vmid not in state.guests:
            raise fail(f"Unable to find VM '{vmid}'")
    storage_id = call.text("storage") or "local"
    storage = state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    if "backup" not in storage.content:
        raise fail(f"storage '{storage_id}' does not support backups")
    local = [v for v in vmids if state.guests[v].node == node and not state.guests[v].template]
    if not local:
        return "OK"
    mode = call.text("mode", "snapshot") or "snapshot"
    compress = call.text("compress", "0") or "0"
    notes_template = call.text("notes-template")
    protected = call.flag("protected")
    wid = str(local[0]) if len(local) == 1 else ""

    def worker(ctx: TaskContext) -> Worker:
        opts = f"--mode {mode} --storage {storage_id}"
        if compress != "0":
            opts += f" --compress {compress}"
        if notes_template:
            opts += f" --notes-template '{notes_template}'"
        ids = " ".join(str(v) for v in local) if not call.flag("all") else "--all 1"
        ctx.log(f"INFO: starting new backup job: vzdump {ids} {opts} --node {node}")
        errors = 0
        for vmid in local:
            guest = state.guests.get(vmid)
            if guest is None:
                ctx.log(f"ERROR: Backup of VM {vmid} failed - unable to find VM {vmid}")
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
    """Next start of a ``HH:MM`` or ``<dow> HH:MM`` schedule (enough for the seeded jobs)."""
    if not job.get("enabled", 1):
        return None
    m = re.search(r"(\d{1,2}):(\d{2})$", str(job.get("schedule", "")))
    if not m:
        return None
    now = int(state.clock.now())
    day = now - now % 86400
    t = day + int(m.group(1)) * 3600 + int(m.group(2)) * 60
    while t <= now:
        t += 86400
    return t


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


def _job(state: ClusterState, job_id: str) -> Config:
    job = state.backup_jobs.get(job_id)
    if job is None:
        raise fail(f"job '{job_id}' does not exist")
    return job


@route("GET", "/cluster/backup/{id}")
def backup_job_get(call: Call) -> dict[str, Any]:
    state = call.sim.state
    job_id = call.req("id")
    return {"id": job_id, **_job(state, job_id)}


def _job_values(call: Call) -> Config:
    out: Config = {}
    for k, v in call.params.items():
        if k in _JOB_META:
            continue
        out[k] = int(v) if isinstance(v, bool) else v
    return out


def _save_job(state: ClusterState, job_id: str, job: Config) -> None:
    """Validate a job as it will be stored (a known storage, some guests selected), then store it.

    Create and update check the same thing: the whole resulting job, not just the changed keys.
    """
    storage = job.get("storage")
    if storage is not None and storage not in state.storages:
        raise fail(f"storage '{storage}' does not exist")
    if not (job.get("vmid") or job.get("all") or job.get("pool")):
        raise fail("No guests selected, please use either 'all', 'vmid' or 'pool'")
    state.backup_jobs[job_id] = job
    state.touch()


@route("POST", "/cluster/backup")
def backup_job_create(call: Call) -> None:
    state = call.sim.state
    job_id = call.text("id")
    if job_id is None:
        h = f"{state.rng.getrandbits(48):012x}"
        job_id = f"backup-{h[:8]}-{h[8:12]}"
    if job_id in state.backup_jobs:
        raise fail(f"Job '{job_id}' already exists")
    job: Config = {"type": "vzdump", "enabled": 1, **_job_values(call)}
    job.setdefault("schedule", "00:00")
    _save_job(state, job_id, job)
    return None


@route("PUT", "/cluster/backup/{id}")
def backup_job_update(call: Call) -> None:
    state = call.sim.state
    job_id = call.req("id")
    job = _job(state, job_id)
    updated = dict(job)
    updated.update(_job_values(call))
    for key in re.split(r"[,;\s]+", call.text("delete") or ""):
        if key:
            updated.pop(key, None)
    _save_job(state, job_id, updated)
    return None


@route("DELETE", "/cluster/backup/{id}")
def backup_job_delete(call: Call) -> None:
    state = call.sim.state
    job_id = call.req("id")
    _job(state, job_id)
    del state.backup_jobs[job_id]
    state.touch()
    return None
