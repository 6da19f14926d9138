"""Fuzz every listed tool's input schema through the official MCP client, against a live simulator.

For each tool the server lists, hypothesis draws arguments from the tool's own schema (the closed
``validation_schema`` the App enforces, whose properties are exactly those of the listed
``inputSchema``), and then:

- **valid and boundary** arguments: real vmids, nodes, storages, snapshot names and UPIDs from the
  simulated cluster mixed with edge values (schema minima and maxima, empty and huge strings,
  unicode, path-like values ``../``, ``%2f``, ``//``);
- **mutated** arguments: one valid draw broken in one way (a wrong JSON type, a number just past its
  bound, a value outside an enum, an unknown key, a missing required key, an array too long or empty).

Every call must come back as a result: never a protocol-level internal error (-32603), never a
crash, never the door's "internal error in pvemcp" fallback. A call the schema rejects must be an
``isError`` result that names the offending field, stays short, and leaves the simulator's request
log untouched (nothing at all is sent). Across the whole run no mutating request may reach the
simulator: the policy asks for confirmation of every write, the in-memory client cannot elicit, so
the token fallback only previews, and the fuzz never sends a token back. No request may carry a
path-traversal segment either.

The server is driven in-memory in both protocol eras: ``legacy`` (real JSON-RPC framing over the
in-memory transport) and ``auto`` (2026-07-28, the direct dispatcher). Hypothesis runs synchronously
and hands each call to an event loop in a blocking portal, which holds the simulator, the App and
the clients for the whole module. Case counts per category appear in pytest's terminal summary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import jsonschema
import mcp_types as types
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from pvemcp.core.app import App
from pvemcp.door.server import build_server
from pvemcp.sim import running_simulator
from pvemcp.sim.runner import RunningSimulator

from .helpers import CONFIRM_EVERYTHING, COUNTS, cluster_env, make_app, mutations, text_of

CALL_DEADLINE_S = 60.0
MAX_ERROR_CHARS = 2_000  # an invalid call's answer must stay small, whatever the model sent
HUGE = 20_000  # characters in a "huge" string: above h11's 16 KiB request-line limit if it ever reached a URL
MODES = ("legacy", "auto")
VALID_EXAMPLES = 60
MUTATED_EXAMPLES = 60

_DUMMY_ENV = {"PROXMOX_URL": "https://127.0.0.1:9", "PROXMOX_TOKEN_ID": "fuzz@pve!fuzz", "PROXMOX_TOKEN_SECRET": "x"}


def _tool_names() -> list[str]:
    """The tools the server lists under the fuzz policy (no network: the App reads only the catalog)."""
    from pvemcp.core.config import load_app_config

    return [t.name for t in App(load_app_config(env=_DUMMY_ENV)).tools()]


TOOLS = _tool_names()

NASTY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "../",
    "..",
    "../../../etc/passwd",
    "%2f",
    "%2F..%2F..%2Faccess",
    "//",
    "/",
    "pve1/../pve2",
    "pve1%2f..%2fpve2",
    "a\x00b",
    "line\nbreak",
    "\u202eevil",
    "ünïcödé",
    "名字",
    "🙂",
    "'; DROP TABLE vms; --",
    "${jndi:ldap://x}",
    "-1",
    "0",
    "x" * HUGE,
    "é" * 5_000,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
WIRE_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")


@dataclass
class Facts:
    """Real identifiers of the simulated cluster, so valid draws reach real objects."""

    vmids: list[int]
    nodes: list[str]
    storages: list[str]
    snapnames: list[str]
    upids: list[str]
    tags: list[str]
    pools: list[str]
    contents: list[str] = field(default_factory=lambda: ["images", "rootdir", "iso", "vztmpl", "backup"])

    @classmethod
    def of(cls, sim: RunningSimulator) -> Facts:
        state = sim.state
        tags: set[str] = set()
        snaps: set[str] = set()
        for guest in state.guests.values():
            tags.update(t for t in str(guest.config.get("tags") or "").replace(",", ";").split(";") if t)
            snaps.update(guest.snapshots)
        return cls(
            vmids=sorted(state.guests),
            nodes=sorted(state.nodes),
            storages=sorted(state.storages),
            snapnames=sorted(snaps) or ["before-upgrade"],
            upids=[str(t.upid) for t in sim.sim.tasks.all()][:20],
            tags=sorted(tags) or ["prod"],
            pools=sorted(state.pools) or ["prod"],
        )


# ---------------------------------------------------------------------------------------------- strategies


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if isinstance(kind, str):
        return [kind]
    if "enum" in schema:
        return sorted({_json_type(v) for v in schema["enum"]})
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _strings_for(name: str, facts: Facts) -> st.SearchStrategy[str]:
    """Strings for a named property: mostly real identifiers, sometimes nasty ones."""
    real: dict[str, list[str]] = {
        "node": facts.nodes,
        "target": facts.nodes,
        "storage": facts.storages,
        "snapname": facts.snapnames,
        "snapshot": facts.snapnames,
        "upid": facts.upids,
        "tag": facts.tags,
        "tags": facts.tags,
        "pool": facts.pools,
        "content": facts.contents,
        "vmid": [str(v) for v in facts.vmids[:10]],
        "path": ["/nodes", "/cluster/resources", f"/nodes/{facts.nodes[0]}/qemu", "/version", "/nodes/../access"],
        "query": ["snapshot", "start", "firewall", "backup"],
        "operation": ["GET /nodes", "POST /nodes/{node}/qemu/{vmid}/status/start", "GET /nope"],
    }
    nasty = st.sampled_from(NASTY_STRINGS)
    plain = st.text(max_size=24)
    if real.get(name):
        return st.one_of(st.sampled_from(real[name]), st.sampled_from(real[name]), nasty, plain)
    return st.one_of(plain, nasty)


def _integers_for(name: str, schema: Mapping[str, Any], facts: Facts) -> st.SearchStrategy[int]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    lo_i = math.ceil(lo) if isinstance(lo, int | float) else None
    hi_i = math.floor(hi) if isinstance(hi, int | float) else None
    if name == "wait":
        # a valid wait on a real task really waits: keep the valid ones short (bounds are fuzzed as mutations)
        return st.integers(min_value=max(lo_i or 0, 0), max_value=min(hi_i if hi_i is not None else 2, 2))
    edges = [v for v in (lo_i, hi_i, 0, 1, -1, 99, 100, 2**31 - 1, 2**53) if v is not None]
    edges = [v for v in edges if (lo_i is None or v >= lo_i) and (hi_i is None or v <= hi_i)]
    options: list[st.SearchStrategy[int]] = [
        st.integers(min_value=lo_i, max_value=hi_i if hi_i is not None else (lo_i or 0) + 10**9)
    ]
    if edges:
        options.append(st.sampled_from(edges))
    if name in ("vmid", "newid") or name == "items":
        options += [st.sampled_from(facts.vmids), st.sampled_from(facts.vmids)]
    return st.one_of(options)


def value_for(name: str, schema: Mapping[str, Any], facts: Facts) -> st.SearchStrategy[Any]:
    """A value valid for ``schema`` (property ``name``), biased to real identifiers and edges."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    options: list[st.SearchStrategy[Any]] = []
    for kind in _types(schema) or ["string"]:
        if kind == "integer":
            options.append(_integers_for(name, schema, facts))
        elif kind == "number":
            options.append(st.floats(allow_nan=False, allow_infinity=False))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "string":
            options.append(_strings_for(name, facts))
        elif kind == "array":
            items = schema.get("items", {})
            low = int(schema.get("minItems", 0))
            high = int(schema.get("maxItems", low + 4))
            lists = st.lists(value_for("items", items, facts), min_size=low, max_size=min(high, low + 4))
            options.append(lists)
            if high <= 500:  # the boundary itself: exactly maxItems
                options.append(st.lists(value_for("items", items, facts), min_size=high, max_size=high))
        elif kind == "object":
            keys = st.one_of(st.sampled_from(["memory", "cores", "name", "net0", "description", "onboot"]), st.text())
            options.append(st.dictionaries(keys, SCALARS, max_size=4))
        elif kind == "null":
            options.append(st.none())
    return st.one_of(options)


@st.composite
def valid_arguments(draw: st.DrawFn, schema: Mapping[str, Any], facts: Facts) -> dict[str, Any]:
    """Required properties always, each optional one with probability ~1/3."""
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    args: dict[str, Any] = {}
    for name in sorted(props):
        if name == "confirm_token":
            continue  # fuzzed as a mutation: a valid token is never sent back
        if name in required or draw(st.integers(0, 2)) == 0:
            args[name] = draw(value_for(name, props[name], facts), label=name)
    return args


def _wrong_type_value(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """A value of a JSON type the property does not allow (or, for an enum, a value outside it)."""
    allowed = set(_types(schema))
    samples: dict[str, st.SearchStrategy[Any]] = {
        "string": st.sampled_from(["100", "true", "x" * HUGE, "🙂"]),
        "integer": st.sampled_from([0, 100, -1, 2**64]),
        "number": st.sampled_from([2.5, -0.5, 1e-9]),  # non-integral: an integral float is an integer
        "boolean": st.booleans(),
        "null": st.none(),
        "array": st.lists(SCALARS, max_size=3),
        "object": st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    }
    choices = [
        strategy
        for kind, strategy in samples.items()
        if kind not in allowed and not (kind == "integer" and "number" in allowed)
    ]
    if "enum" in schema:
        choices.append(st.sampled_from(["NOT-IN-ENUM", "x" * HUGE, "running\x00"]))
    return st.one_of(choices)


@st.composite
def mutated_arguments(draw: st.DrawFn, schema: Mapping[str, Any], facts: Facts) -> dict[str, Any]:
    """A valid draw broken in exactly one way the schema forbids."""
    args = draw(valid_arguments(schema, facts))
    props: Mapping[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    kinds = ["wrong_type", "unknown_key"]
    if required:
        kinds.append("drop_required")
    if any("minimum" in p or "maximum" in p for p in props.values()):
        kinds.append("out_of_range")
    if any(p.get("type") == "array" for p in props.values()):
        kinds.append("bad_array")
    kind = draw(st.sampled_from(kinds), label="mutation")
    if kind == "wrong_type" and props:
        name = draw(st.sampled_from(sorted(props)), label="field")
        args[name] = draw(_wrong_type_value(props[name]), label="wrong value")
    elif kind == "unknown_key" or not props:
        extra = draw(st.one_of(st.sampled_from(["vmidd", "__proto__", "../x", "Node", "x" * 300]), st.text(min_size=1)))
        if extra not in props:
            args[extra] = draw(SCALARS)
    elif kind == "drop_required":
        args.pop(draw(st.sampled_from(required)), None)
    elif kind == "out_of_range":
        bounded = sorted(n for n, p in props.items() if "minimum" in p or "maximum" in p)
        name = draw(st.sampled_from(bounded), label="field")
        prop = props[name]
        edges = []
        if "minimum" in prop:
            edges.append(int(prop["minimum"]) - 1)
        if "maximum" in prop:
            edges += [int(prop["maximum"]) + 1, 2**63]
        args[name] = draw(st.sampled_from(edges))
    elif kind == "bad_array":
        arrays = sorted(n for n, p in props.items() if p.get("type") == "array")
        name = draw(st.sampled_from(arrays), label="field")
        prop = props[name]
        low, high = int(prop.get("minItems", 0)), int(prop.get("maxItems", 10**6))
        options: list[Any] = [[None, "x"], [2.5]]
        if low > 0:
            options.append([])
        if high < 10_000:
            options.append(list(range(100, 100 + high + 1)))
        if prop.get("items", {}).get("minimum") is not None:
            options.append([int(prop["items"]["minimum"]) - 1])
        args[name] = draw(st.sampled_from(options))
    return args


# ---------------------------------------------------------------------------------------------- the stack


class Stack:
    """The simulator, the App and one client per protocol era, living in a portal's event loop.

    A plain class with a one-line ``repr`` on purpose: hypothesis prints every argument of a failing
    example, and a dataclass would be expanded field by field, simulator credentials included.
    """

    def __init__(
        self,
        portal: BlockingPortal,
        sim: RunningSimulator,
        app: App,
        clients: dict[str, Client],
        facts: Facts,
        wire: dict[str, types.Tool],
    ) -> None:
        self.portal = portal
        self.sim = sim
        self.app = app
        self.clients = clients
        self.facts = facts
        self.wire = wire

    def __repr__(self) -> str:
        return f"Stack(<simulator on 127.0.0.1>, {len(self.wire)} tools)"

    def schema(self, tool: str) -> dict[str, Any]:
        found = self.app.tool(tool)
        assert found is not None, f"{tool} is not listed"
        return dict(found.validation_schema)

    def call(self, mode: str, tool: str, args: dict[str, Any]) -> types.CallToolResult | MCPError:
        result: types.CallToolResult | MCPError = self.portal.call(_call, self.clients[mode], tool, args)
        return result


async def _call(client: Client, tool: str, args: dict[str, Any]) -> types.CallToolResult | MCPError:
    with anyio.fail_after(CALL_DEADLINE_S):
        try:
            return await client.call_tool(tool, args)
        except MCPError as exc:
            return exc


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    simulator = running_simulator(seed=3, guests=24, task_speed=50.0)
    with start_blocking_portal(backend="asyncio") as portal, portal.wrap_async_context_manager(simulator) as sim:
        app = make_app(cluster_env(sim), CONFIRM_EVERYTHING, tmp)
        legacy = Client(build_server(app, caller="fuzz"), mode="legacy")
        auto = Client(build_server(app, caller="fuzz"), mode="auto")
        with (
            portal.wrap_async_context_manager(app),
            portal.wrap_async_context_manager(legacy),
            portal.wrap_async_context_manager(auto),
        ):
            listed = portal.call(legacy.list_tools).tools
            yield Stack(
                portal=portal,
                sim=sim,
                app=app,
                clients={"legacy": legacy, "auto": auto},
                facts=Facts.of(sim),
                wire={t.name: t for t in listed},
            )


# ---------------------------------------------------------------------------------------------- checks


_TRAVERSAL = re.compile(r"(^|/)\.\.?(/|$)|//")


def candidate_fields(errors: list[jsonschema.ValidationError]) -> set[str]:
    """The names an answer may use for the offending field: top-level keys, missing or unknown keys."""
    names: set[str] = set()
    for error in errors:
        if error.path:
            names.add(str(error.path[0]))
        if error.validator == "required":
            names.update(p for p in error.validator_value if p not in (error.instance or {}))
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            names.update(k for k in error.instance if k not in allowed)
    return names


# Bugs in pvemcp this suite found; all four are fixed and their reproductions below (test_fixed_bug_*)
# now guard against regressions. A new bug found by the fuzzer gets an entry here and a strict-xfail
# reproduction until it is fixed. Only the answer's wording is ever excused: the "nothing mutated, no
# traversal, no protocol error" invariants are checked regardless.
KNOWN_BUGS: dict[str, str] = {}
FIXED_BUGS = {
    "B1": "a schema error echoed the offending value whole: a 20,000-character string gave a 20,000-character error",
    "B2": "an unknown key containing a single quote was reported as 'arguments', not by its name",
    "B3": "task_status/task_log/task_stop with a malformed UPID: ValueError escaped as 'internal error in pvemcp'",
    "B4": "a string too long for httpx2's URL limit: InvalidURL escaped as 'internal error in pvemcp'",
}
URL_LIMIT_HINT = 32_000  # httpx2 refuses URLs of 64 KiB; any single value this long may hit it


def known_bug(tool: str, args: Mapping[str, Any], text: str, errors: list[jsonschema.ValidationError]) -> str | None:
    """The KNOWN_BUGS entry this answer is an instance of, if any."""
    strings = list(_strings(args))
    if "internal error" in text.lower():
        if tool in ("task_status", "task_log", "task_stop") and not _is_upid(args.get("upid")):
            return "B3"
        if any(len(v) >= URL_LIMIT_HINT for v in strings):
            return "B4"
        return None
    if errors:
        names = candidate_fields(errors)
        if not any(_named(n, text) for n in names) and any("'" in n for n in names):
            return "B2"
        if len(text) > MAX_ERROR_CHARS and any(len(v) > MAX_ERROR_CHARS and v[:200] in text for v in strings):
            return "B1"
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _is_upid(value: Any) -> bool:
    from pvemcp.dialect.upid import parse_upid

    try:
        parse_upid(value)
    except ValueError:
        return False
    return True


def check_call(stack: Stack, mode: str, tool: str, args: dict[str, Any], origin: str) -> None:
    """Call ``tool`` and hold the answer and the request log to the suite's rules."""
    schema = stack.schema(tool)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(args), key=lambda e: list(e.path))
    log = stack.sim.request_log
    before = len(log)
    result = stack.call(mode, tool, args)
    sent = log[before:]
    if isinstance(result, MCPError):
        code = result.error.code
        pytest.fail(f"{tool}({_show(args)}) raised a protocol error {code}: {result.error.message}")
    text = text_of(result)
    assert not mutations(sent), f"{tool}({_show(args)}) sent {[(r.method, r.path) for r in mutations(sent)]}"
    bad_paths = [r.path for r in sent if _TRAVERSAL.search(r.path)]
    assert not bad_paths, f"{tool}({_show(args)}) reached the simulator with traversal paths {bad_paths}"
    COUNTS[f"fuzz cases ({mode})"] += 1
    if errors:
        COUNTS[f"fuzz: {origin}, rejected by schema"] += 1
        assert result.is_error, f"{tool}({_show(args)}) is invalid ({errors[0].message[:200]}) but succeeded: {text}"
        assert not sent, f"{tool}({_show(args)}) was rejected but sent {[(r.method, r.path) for r in sent]}"
    else:
        COUNTS[f"fuzz: {origin}, valid" + (", refused downstream" if result.is_error else ", answered")] += 1
    bug = known_bug(tool, args, text, errors)
    if bug is not None and bug in KNOWN_BUGS:  # a fixed bug is no excuse any more
        COUNTS[f"fuzz: known bug {bug} hit (see KNOWN_BUGS)"] += 1
        return
    assert "internal error" not in text.lower(), f"{tool}({_show(args)}): {text}"
    if errors:
        names = candidate_fields(errors)
        assert any(_named(name, text) for name in names), (
            f"{tool}: the error does not name {sorted(names)}: {text[:300]}"
        )
        assert len(text) <= MAX_ERROR_CHARS, f"{tool}: a {len(text):,}-character error for {_show(args)}"


def _named(name: str, text: str) -> bool:
    """Whether ``text`` names the field: verbatim, escaped (control characters), or by a long name's prefix."""
    forms = {name, name.encode("unicode_escape").decode("ascii"), repr(name)[1:-1], name[:40]}
    return any(form and form in text for form in forms)


def _show(args: Mapping[str, Any]) -> str:
    text = repr(dict(args))
    return text if len(text) < 300 else text[:300] + "…"


_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)


# ---------------------------------------------------------------------------------------------- tests


def test_every_listed_tool_is_fuzzed(stack: Stack) -> None:
    """The wire list and the fuzzed list agree, and the wire schema exposes exactly the enforced keys."""
    assert sorted(stack.wire) == sorted(TOOLS)
    for name, tool in stack.wire.items():
        enforced = set(stack.schema(name).get("properties", {}))
        listed = set(tool.input_schema.get("properties", {}))
        assert listed == enforced, f"{name}: listed {sorted(listed ^ enforced)} differ from the enforced schema"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", TOOLS)
@settings(_SETTINGS, max_examples=VALID_EXAMPLES)
@given(data=st.data())
def test_valid_and_boundary_arguments(stack: Stack, tool: str, mode: str, data: st.DataObject) -> None:
    args = data.draw(valid_arguments(stack.schema(tool), stack.facts), label="arguments")
    check_call(stack, mode, tool, args, "valid/boundary draw")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", TOOLS)
@settings(_SETTINGS, max_examples=MUTATED_EXAMPLES)
@given(data=st.data())
def test_mutated_arguments(stack: Stack, tool: str, mode: str, data: st.DataObject) -> None:
    args = data.draw(mutated_arguments(stack.schema(tool), stack.facts), label="arguments")
    check_call(stack, mode, tool, args, "mutated draw")


@pytest.mark.parametrize("tool", TOOLS)
def test_path_like_values_in_every_string_field(stack: Stack, tool: str) -> None:
    """Each string property gets each path-like value, alone with the required keys filled in."""
    schema = stack.schema(tool)
    props = schema.get("properties", {})
    base = {name: _minimal(props[name], stack.facts) for name in schema.get("required", [])}
    for name, prop in sorted(props.items()):
        if "string" not in _types(prop) or "enum" in prop:
            continue
        for value in ("../", "../../access/users", "%2f", "%2F..%2F", "//", "a/../../b", ".", "x" * 100_000):
            check_call(stack, "legacy", tool, {**base, name: value}, "path-like value")


def test_nothing_was_ever_mutated(stack: Stack) -> None:
    """The whole module's witness: no mutating request reached the simulator, whatever was fuzzed."""
    assert not mutations(stack.sim.request_log)


# ---------------------------------------------------------------------------------------------- known bugs


def _answer(stack: Stack, tool: str, args: dict[str, Any]) -> str:
    result = stack.call("legacy", tool, args)
    assert isinstance(result, types.CallToolResult)
    assert result.is_error
    return text_of(result)


def test_fixed_bug_b1_huge_value_echoed(stack: Stack) -> None:
    text = _answer(stack, "guest_status", {"vmid": "x" * HUGE})
    assert "vmid" in text and len(text) <= MAX_ERROR_CHARS


def test_fixed_bug_b2_quoted_unknown_key(stack: Stack) -> None:
    text = _answer(stack, "cluster_status", {"it's": 1})
    assert "it's" in text or "it\\'s" in text


def test_fixed_bug_b3_malformed_upid(stack: Stack) -> None:
    text = _answer(stack, "task_status", {"upid": "../"})
    assert "internal error" not in text and "upid" in text.lower()


def test_fixed_bug_b4_url_too_long(stack: Stack) -> None:
    text = _answer(
        stack, "storage_content", {"node": stack.facts.nodes[0], "storage": "local", "content": "x" * 100_000}
    )
    assert "internal error" not in text and "content" in text


def _minimal(prop: Mapping[str, Any], facts: Facts) -> Any:
    kinds = _types(prop)
    if "enum" in prop:
        return prop["enum"][0]
    if "integer" in kinds:
        return facts.vmids[0]
    if "string" in kinds:
        return facts.nodes[0]
    if "boolean" in kinds:
        return False
    if "array" in kinds:
        return [facts.vmids[0]]
    return {}
