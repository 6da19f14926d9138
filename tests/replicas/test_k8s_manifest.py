"""The Kubernetes manifest stays in step with pvemcp: variables it reads, probes it serves, keys it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pvemcp.core.config import known_env
from pvemcp.door.health import HEALTHZ, READYZ

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "pvemcp.yaml"


def documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8"))}


def test_the_manifest_sets_only_variables_pvemcp_reads() -> None:
    container = documents()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert {"PVEMCP_STATE_URL", "PVEMCP_AUDIT_KEY_FILE", "PVEMCP_SECRET_KEY_FILE"} <= set(names)
    assert [n for n in names if n not in known_env()] == []


def test_probes_are_the_ones_the_door_serves() -> None:
    container = documents()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == HEALTHZ
    assert container["readinessProbe"]["httpGet"]["path"] == READYZ


def test_every_secret_the_pods_read_is_in_the_secret() -> None:
    docs = documents()
    keys = set(docs["Secret"]["stringData"])
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    files = {
        e["value"].rsplit("/", 1)[1] for e in container["env"] if str(e.get("value", "")).startswith("/run/secrets/")
    }
    assert refs | files <= keys
