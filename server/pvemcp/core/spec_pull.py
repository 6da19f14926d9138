"""``pvemcp spec pull``: the cluster's own API schema, so a PVE 8.x or 9.2 cluster gets its exact parameters.

Every PVE node serves its API viewer, and with it the whole API schema of the installed release, at
``/pve-docs/api-viewer/apidoc.js`` — a static file, served without authentication (proxmox/pve-manager
``PVE/Service/pveproxy.pm``: ``add_dirs($dirs, '/pve-docs/' => ...)`` under "there is no authentication
for those pages and dirs"). The file starts with the schema as one JSON literal, written by
proxmox/pve-docs ``extractapi.pl``: ``const apiSchema = <JSON>;``, followed by the viewer's code.

The pull fetches it over the same pinned TLS as the API, converts it with the generator that built the
bundled ``openapi.json``, builds the tool catalog from it (a release without an operation a tool drives
is refused, naming the tools), and caches it per PVE version, with a pointer from the cluster's URL to
that version. ``serve`` (and every other command) then uses the pulled schema for that cluster; the
bundled one stays the fallback. Nothing here sends credentials: ``GET /version`` goes through the
normal client, the schema file needs none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pvemcp.core.catalog_cache import cache_dir
from pvemcp.core.pve.config import ClientConfig
from pvemcp.dialect.model import Spec

log = logging.getLogger("pvemcp")

APIDOC_PATH = "/pve-docs/api-viewer/apidoc.js"
SPEC_ENV = "PVEMCP_SPEC"
_MARKERS = ("const apiSchema =", "var apiSchema =", "let apiSchema =")


class PullError(Exception):
    """The schema could not be pulled or used; the message says what to do."""


def parse_apidoc_js(text: str) -> list[Any]:
    """The schema tree of an ``apidoc.js``: the JSON literal after ``const apiSchema =``."""
    for marker in _MARKERS:
        start = text.find(marker)
        if start >= 0:
            break
    else:
        raise PullError("the file has no `const apiSchema = [...]`: not a PVE api-viewer apidoc.js")
    body = text[start + len(marker) :].lstrip()
    try:
        tree, _ = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise PullError(f"apiSchema is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(tree, list) or not all(isinstance(node, Mapping) and "path" in node for node in tree):
        raise PullError("apiSchema is not a list of API tree nodes")
    return tree


def node_base_url(cluster: ClientConfig) -> str:
    """``https://host:port`` of the configured API URL (which ends in ``/api2/json``)."""
    parts = urlsplit(cluster.url)
    return f"{parts.scheme}://{parts.netloc}"


async def fetch_apidoc_js(cluster: ClientConfig) -> str:
    """GET the node's apidoc.js over the cluster's TLS settings (pin, CA or insecure); no credentials."""
    import httpx2

    from pvemcp.core.pve.tls import PveTransport, build_ssl_context

    transport = PveTransport(
        ssl_context=build_ssl_context(
            fingerprint=cluster.fingerprint, ca_file=cluster.ca_file, insecure=cluster.insecure
        ),
        pin=cluster.fingerprint,
        max_connections=2,
    )
    url = node_base_url(cluster) + APIDOC_PATH
    timeout = httpx2.Timeout(cluster.read_timeout_s, connect=cluster.connect_timeout_s)
    async with httpx2.AsyncClient(transport=transport, trust_env=False, timeout=timeout) as http:
        try:
            response = await http.get(url, headers={"User-Agent": "pvemcp"})
        except httpx2.HTTPError as exc:
            raise PullError(f"cannot fetch {url}: {exc} — `pvemcp check` tests the connection step by step") from None
    if response.status_code == 404:
        raise PullError(f"{url} answered 404: this node serves no API viewer (is the pve-docs package installed?)")
    if response.status_code != 200:
        raise PullError(f"{url} answered {response.status_code} {response.reason_phrase}")
    return response.text


# -- the cache ------------------------------------------------------------------------------------


def spec_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """Where pulled schemas live: ``<catalog cache>/spec``; None when the cache is off."""
    base = cache_dir(dict(os.environ if env is None else env))
    return None if base is None else base / "spec"


def _pointer(directory: Path, cluster: ClientConfig) -> Path:
    """Keyed by URL and pinned certificate: another server answering at the same address gets no schema."""
    key = f"{cluster.url} {cluster.fingerprint or ''}"
    return directory / f"cluster-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _spec_file(directory: Path, version: str) -> Path:
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in version)
    return directory / f"openapi-pve-{safe}.json"


def pulled_spec_for(clusters: Mapping[str, ClientConfig], env: Mapping[str, str] | None = None) -> Path | None:
    """The pulled schema every configured cluster points at, if there is exactly one such file."""
    directory = spec_dir(env)
    if directory is None or not clusters:
        return None
    found: set[Path] = set()
    for cluster in clusters.values():
        try:
            pointer = json.loads(_pointer(directory, cluster).read_text(encoding="utf-8"))
            path = Path(pointer["spec"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not path.is_file():
            return None
        found.add(path)
    return found.pop() if len(found) == 1 else None


def use_pulled_spec(clusters: Mapping[str, ClientConfig]) -> Path | None:
    """Point this process at the pulled schema of the configured cluster(s), unless PVEMCP_SPEC is set."""
    if os.environ.get(SPEC_ENV):
        return None
    path = pulled_spec_for(clusters)
    if path is not None:
        os.environ[SPEC_ENV] = str(path)
        log.info("using the API schema pulled from the cluster: %s", path)
    return path


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


# -- the pull -------------------------------------------------------------------------------------


@dataclass
class Difference:
    """What the cluster's schema has that the bundled one has not, and the reverse."""

    only_cluster: list[str] = field(default_factory=list)
    only_bundled: list[str] = field(default_factory=list)
    changed_parameters: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    def summary(self, tool_ops: Mapping[str, list[str]]) -> list[str]:
        lines = [
            f"{len(self.only_cluster)} operation(s) only in the cluster's schema, "
            f"{len(self.only_bundled)} only in pvemcp's bundled one, "
            f"{len(self.changed_parameters)} with different parameters"
        ]
        for key, (added, removed) in sorted(self.changed_parameters.items()):
            tools = [t for t, ops in tool_ops.items() if key in ops]
            if tools:
                change = ", ".join([*(f"+{p}" for p in added), *(f"-{p}" for p in removed)])
                lines.append(f"  {key} ({', '.join(tools)}): {change}")
        return lines


def _parameters(spec: Spec, key: str) -> set[str]:
    return set(spec.operation(key).input_schema.get("properties", {}))


def compare(cluster: Spec, bundled: Spec) -> Difference:
    ours, theirs = set(bundled.keys()), set(cluster.keys())
    diff = Difference(only_cluster=sorted(theirs - ours), only_bundled=sorted(ours - theirs))
    for key in sorted(ours & theirs):
        a, b = _parameters(cluster, key), _parameters(bundled, key)
        if a != b:
            diff.changed_parameters[key] = (sorted(a - b), sorted(b - a))
    return diff


def build_spec_document(tree: list[Any], version: str) -> dict[str, Any]:
    """openapi.json for the cluster's release, by the generator that built the bundled one."""
    from pvemcp.dialect.generator import OpenApiBuilder, default_converter, render

    document = OpenApiBuilder(default_converter()).build(tree)
    document["info"]["version"] = version
    document["info"]["description"] = f"Pulled by pvemcp from the cluster's {APIDOC_PATH} (PVE {version})."
    return dict(json.loads(render(document)))


async def cluster_version(cluster: ClientConfig) -> str:
    from pvemcp.core.pve.client import PveClient
    from pvemcp.core.pve.errors import PveError

    try:
        async with PveClient(cluster) as pve:
            answer = await pve.get("/version")
    except PveError as exc:
        raise PullError(f"GET /version failed: {exc}") from None
    if not isinstance(answer, Mapping) or not answer.get("version"):
        raise PullError(f"GET /version gave no version: {str(answer)[:80]}")
    return str(answer["version"])


async def pull(cluster: ClientConfig, directory: Path, bundled: Spec, refresh: bool = False) -> list[str]:
    """Fetch, convert, check against tools.yaml, cache. Returns the report's lines; raises PullError."""
    from pvemcp.core.catalog import Catalog, CatalogError

    version = await cluster_version(cluster)
    target = _spec_file(directory, version)
    lines: list[str] = []
    if target.is_file() and not refresh:
        document = json.loads(target.read_text(encoding="utf-8"))
        lines.append(f"PVE {version}: schema already pulled ({target}); --refresh fetches it again")
    else:
        tree = parse_apidoc_js(await fetch_apidoc_js(cluster))
        document = build_spec_document(tree, version)
        lines.append(f"PVE {version}: pulled {node_base_url(cluster)}{APIDOC_PATH}")
    spec = Spec(document)
    try:
        catalog = Catalog.load(spec)
    except CatalogError as exc:
        raise PullError(
            f"pvemcp's tools cannot be built on PVE {version}'s schema: {exc}. Nothing was changed; the "
            "bundled schema stays in use"
        ) from None
    tool_ops = {name: [k for k in tool.operations.values() if k] for name, tool in catalog.tools.items()}
    lines += compare(spec, bundled).summary(tool_ops)
    _write_atomic(target, json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    pointer = {"url": cluster.url, "version": version, "spec": str(target)}
    _write_atomic(_pointer(directory, cluster), json.dumps(pointer))
    lines.append(f"{len(catalog.tools)} tools built; serve uses it for {cluster.url} (cached in {target})")
    return lines


# -- the command ----------------------------------------------------------------------------------


def bundled_spec_path() -> Path:
    """The shipped openapi.json, whatever PVEMCP_SPEC says (the comparison is always against it)."""
    from pvemcp.dialect import resources

    saved = os.environ.pop(SPEC_ENV, None)
    try:
        return resources.data_file("openapi.json")
    finally:
        if saved is not None:
            os.environ[SPEC_ENV] = saved
