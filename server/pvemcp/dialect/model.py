"""Runtime access to ``openapi.json``: operations, their merged input schemas, and path matching.

Start-up cost is the reason for the shape of this module. The document is parsed once, lazily,
on the first question (about 10 ms for 2 MB with the stdlib parser), and an operation's merged
input schema is derived only when somebody asks for that operation, then cached. Nothing here
touches the network or imports ``mcp``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvemcp.dialect.compact import compact_object_hook, thaw
from pvemcp.dialect.resources import data_file
from pvemcp.dialect.types import JsonDict

METHODS = ("GET", "POST", "PUT", "DELETE")
_PARAM_SEGMENT = re.compile(r"^\{([^}]+)\}$")


@dataclass(frozen=True)
class Operation:
    """One API operation, as the tools and the simulator need it."""

    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    path_params: tuple[str, ...]
    input_schema: JsonDict
    output_schema: JsonDict
    task: bool
    permissions: JsonDict | None
    protected: bool
    proxyto: str | None
    allowtoken: bool
    query_params: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PUT")


class _Route:
    """A trie over path segments; static segments win over ``{param}`` segments, as in PVE."""

    __slots__ = ("param", "param_child", "path", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Route] = {}
        self.param: str | None = None
        self.param_child: _Route | None = None
        self.path: str | None = None

    def insert(self, template: str) -> None:
        node = self
        for segment in _segments(template):
            match = _PARAM_SEGMENT.match(segment)
            if match:
                if node.param_child is None:
                    node.param_child = _Route()
                    node.param = match.group(1)
                node = node.param_child
            else:
                node = node.static.setdefault(segment, _Route())
        node.path = template

    def find(self, segments: list[str]) -> tuple[str, dict[str, str]] | None:
        return self._find(segments, 0, {})

    def _find(self, segments: list[str], index: int, bound: dict[str, str]) -> tuple[str, dict[str, str]] | None:
        if index == len(segments):
            return (self.path, bound) if self.path is not None else None
        segment = segments[index]
        child = self.static.get(segment)
        if child is not None:
            found = child._find(segments, index + 1, bound)
            if found is not None:
                return found
        if self.param_child is not None and self.param is not None:
            return self.param_child._find(segments, index + 1, {**bound, self.param: segment})
        return None


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/")] if path.strip("/") else []


class Spec:
    """The whole API as described by ``openapi.json``."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._doc = document
        self._paths: Mapping[str, Mapping[str, Any]] = document["paths"]
        self._schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
        self._routes: _Route | None = None

    @classmethod
    def from_file(cls, path: Path) -> Spec:
        """The document of ``path``, kept as compact read-only objects (``dialect/compact.py``): 4 MB in
        memory instead of 7 for the bundled 2.6 MB file. What :meth:`operation` hands out is plain JSON."""
        return cls(json.loads(path.read_text(encoding="utf-8"), object_hook=compact_object_hook()))

    @property
    def version(self) -> str:
        """The PVE release the document describes (``info.version``, e.g. ``"9.1"``)."""
        return str(self._doc.get("info", {}).get("version", "?"))

    # ------------------------------------------------------------------ lookup
    def keys(self) -> Iterator[str]:
        """Every operation as ``"METHOD /template"``."""
        for path, item in self._paths.items():
            for method in item:
                yield f"{method.upper()} {path}"

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or " " not in key:
            return False
        method, path = key.split(" ", 1)
        return method.lower() in self._paths.get(path, {})

    def operation(self, key: str) -> Operation:
        """The operation for ``"METHOD /template"``; KeyError when the API has no such operation."""
        return self._operation(key)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one Spec per process; the cache is the point
    def _operation(self, key: str) -> Operation:
        method, _, path = key.partition(" ")
        item = self._paths.get(path)
        if item is None or method.lower() not in item:
            raise KeyError(f"the Proxmox VE API has no operation {key!r}")
        return self._build(method.upper(), path, item[method.lower()])

    def path_known(self, concrete_path: str) -> bool:
        """True if the concrete path matches a template of the API, whatever the method."""
        return self._route(concrete_path) is not None

    def match(self, method: str, concrete_path: str) -> tuple[Operation, dict[str, str]] | None:
        """Find the operation serving ``METHOD /concrete/path`` and the path parameters it binds.

        Matching is exact: no case folding, no empty segments (``//``), no percent-decoding; a
        caller that accepts such input must canonicalize it first (and should rather refuse it).
        """
        found = self._route(concrete_path)
        if found is None:
            return None
        template, bound = found
        if method.lower() not in self._paths[template]:
            return None
        return self.operation(f"{method.upper()} {template}"), bound

    def _route(self, concrete_path: str) -> tuple[str, dict[str, str]] | None:
        if not concrete_path.startswith("/"):
            return None
        segments = concrete_path[1:].split("/") if concrete_path != "/" else []
        if any(s == "" for s in segments):
            return None
        if self._routes is None:
            routes = _Route()
            for template in self._paths:
                routes.insert(template)
            self._routes = routes
        return self._routes.find(segments)

    # ------------------------------------------------------------------ derivation
    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            resolved: Mapping[str, Any] = self._schemas[ref.rsplit("/", 1)[1]]
            return resolved
        return schema

    def _build(self, method: str, path: str, op: Mapping[str, Any]) -> Operation:
        properties: JsonDict = {}
        required: list[str] = []
        path_params: list[str] = []
        query_params: list[str] = []
        merged: JsonDict = {"type": "object"}
        for param in op.get("parameters", []):
            schema = thaw(param["schema"])
            if param.get("description"):
                schema = {"description": param["description"], **schema}
            properties[param["name"]] = schema
            if param.get("required"):
                required.append(param["name"])
            (path_params if param["in"] == "path" else query_params).append(param["name"])
        body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
        if body is not None:
            body_schema = self._resolve(body["schema"])
            properties.update(thaw(body_schema.get("properties", {})))
            required.extend(body_schema.get("required", []))
            for key in ("patternProperties", "dependentRequired"):
                if key in body_schema:
                    merged[key] = thaw(body_schema[key])
        merged["properties"] = properties
        if required:
            merged["required"] = required
        merged["additionalProperties"] = False
        content = op["responses"]["200"]["content"]["application/json"]["schema"]
        return Operation(
            method=method,
            path=path,
            operation_id=op["operationId"],
            summary=op.get("summary", ""),
            description=op.get("description", ""),
            path_params=tuple(path_params),
            query_params=tuple(query_params),
            input_schema=merged,
            output_schema=thaw(content["properties"]["data"]),
            task=bool(op.get("x-pve-task")),
            permissions=thaw(op.get("x-pve-permissions")),
            protected=bool(op.get("x-pve-protected")),
            proxyto=op.get("x-pve-proxyto"),
            allowtoken=bool(op.get("x-pve-allowtoken", True)),
        )


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Spec:
    return Spec.from_file(Path(path))


def load_spec(path: Path | None = None) -> Spec:
    """The process-wide Spec (parsed once per file)."""
    return _load(str(path or data_file("openapi.json")))
