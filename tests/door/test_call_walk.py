"""The call walk of docs/ARCHITECTURE.md, checked against a profiled confirmed ``guest_stop``.

The walk table names, step by step, the files a confirmed ``guest_stop`` goes through from the MCP
``tools/call`` to the HTTP request that stops the guest. Here one such call runs through the official MCP
client, the door, the App and the simulator (both protocol eras), under :func:`sys.setprofile`; every
pvemcp function entered until ``PveClient.request`` is called with the POST is recorded. The table must
name at most 8 files (issue #16), say so in its heading, and each file it names must really be entered,
in the table's order, on the way to that request; so the document cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from mcp import Client

from pvemcp.door._core import App
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, REPO, Answers, guest_with, mutating, text_of

pytestmark = pytest.mark.anyio

PACKAGE = REPO / "server" / "pvemcp"
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
MAX_FILES = 8


def walk_table() -> tuple[int, list[str]]:
    """The file count the walk's heading states, and the file (under server/pvemcp/) of each step of its table."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## One call, step by step", 1)[1].split("\n## ", 1)[0]
    stated = re.search(r"\*\*(\d+) files\*\*", section)
    assert stated, "the walk's heading no longer states its number of files"
    files = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            named = re.search(r"`([\w/]+\.py)`", cells[2])
            assert named, f"step {cells[0]} names no file: {line}"
            files.append(named.group(1))
    return int(stated.group(1)), files


class Recorder:
    """A profile function: the pvemcp file of every function entered (the simulator aside), until the POST."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.post_at: int | None = None  # index in ``files`` where PveClient.request was called with a POST

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or self.post_at is not None:
            return
        path = Path(frame.f_code.co_filename)
        if not path.is_relative_to(PACKAGE) or path.is_relative_to(PACKAGE / "sim"):
            return
        relative = path.relative_to(PACKAGE).as_posix()
        if frame.f_code.co_name == "<module>":  # an import, not a step of the call
            return
        self.files.append(relative)
        sends = relative == "core/pve/client.py" and frame.f_code.co_name == "request"
        if sends and frame.f_locals.get("method") == "POST":
            self.post_at = len(self.files) - 1


def _in_order(wanted: list[str], seen: list[str]) -> bool:
    """``wanted`` is a subsequence of ``seen``: each step entered after the one before it."""
    position = 0
    for file in seen:
        if position < len(wanted) and file == wanted[position]:
            position += 1
    return position == len(wanted)


def test_the_walk_table_names_at_most_eight_files() -> None:
    stated, files = walk_table()
    assert len(files) == len(set(files)) == stated <= MAX_FILES, (stated, files)
    assert all((PACKAGE / f).is_file() for f in files), files


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_a_confirmed_guest_stop_walks_the_files_the_table_names(
    app: App, sim: RunningSimulator, mode: str
) -> None:
    _, files = walk_table()
    vmid = guest_with(sim, status="running")
    recorder = Recorder()
    async with Client(build_server(app), mode=mode, elicitation_callback=Answers("accept")) as client:
        warm = await client.call_tool("guest_stop", {"vmid": vmid, "dry_run": True})  # first-call imports
        assert not warm.is_error, text_of(warm)
        sys.setprofile(recorder)
        try:
            result = await client.call_tool("guest_stop", {"vmid": vmid})
        finally:
            sys.setprofile(None)
    assert not result.is_error, text_of(result)
    assert [r.method for r in mutating(sim)] == ["POST"] and sim.state.guests[vmid].status == "stopped"
    assert recorder.post_at is not None, "the stop request was not seen leaving PveClient.request"
    path = recorder.files[: recorder.post_at + 1]
    assert [f for f in files if f not in path] == [], "a file the table names is not on the call path"
    assert _in_order(files, path), f"the table's order is not the call's: {files}"
    assert "core/kinds.py" not in path  # the pipeline reaches the kind's function directly
