"""The operator's commands of the CLI door: ``pvemcp audit`` (the ledger) and ``pvemcp spec`` (the API schema).

They print and return exit codes, so they live in the door; the work they ask for (verifying a ledger,
re-anchoring it, building or pulling a schema) stays in the core and the dialect, reached through
``door/_core.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import anyio

from pvemcp.dialect.generator import build_openapi
from pvemcp.dialect.model import load_spec
from pvemcp.door._core import (
    HeadAnchor,
    LedgerError,
    PullError,
    VerifyReport,
    bundled_spec_path,
    default_head_path,
    default_key_path,
    load_app_config,
    load_key,
    parse_head,
    pull,
    reanchor,
    spec_dir,
    verify,
    verify_database,
)

__all__ = ["cmd_audit", "cmd_spec"]


def cmd_audit(args: argparse.Namespace) -> int:
    """``pvemcp audit verify|head [PATH]``: 0 intact, 1 tampered, 2 usage or I/O error.

    ``verify [--key-file F] [--expect-head SEQ:MAC]`` checks the chain, the head anchor and the
    pinned head; ``head [--reanchor]`` verifies, then prints ``SEQ:MAC`` for the operator to keep
    elsewhere — with ``--reanchor`` it first rewrites the anchor from the ledger (after an upgrade from
    a pvemcp without anchors, or after the operator accepted a loss that verify reported).
    """
    action = getattr(args, "audit_command", None)
    if action not in ("verify", "head"):
        print("usage: pvemcp audit verify|head [PATH] [--key-file FILE]", file=sys.stderr)
        return 2
    path = getattr(args, "path", None) or os.environ.get("PVEMCP_AUDIT_LOG", "").strip()
    path = path or os.environ.get("PVEMCP_STATE_URL", "").strip()
    if path.startswith(("postgresql://", "postgres://")):  # the ledger several replicas share
        return _audit_shared(args, path)
    if not path:
        print(f"pvemcp audit {action}: no ledger given; pass PATH or set PVEMCP_AUDIT_LOG", file=sys.stderr)
        return 2
    ledger = Path(path).expanduser()
    if not ledger.is_file() and not (ledger.parent.is_dir() and default_head_path(ledger).is_file()):
        print(f"pvemcp audit {action}: ledger {ledger} does not exist", file=sys.stderr)
        return 2
    key_arg = getattr(args, "key_file", None) or os.environ.get("PVEMCP_AUDIT_KEY_FILE", "").strip()
    key_path = Path(key_arg).expanduser() if key_arg else default_key_path(ledger)
    try:
        key = load_key(key_path)
        expect = getattr(args, "expect_head", None)
        pinned = parse_head(expect) if expect else None
        if action == "head" and getattr(args, "reanchor", False):
            reanchor(ledger, key)
        report = verify(ledger, key, expect_head=pinned)
    except LedgerError as exc:
        print(f"pvemcp audit {action}: {exc}", file=sys.stderr)
        return 2
    return _print_verdict(action, report)


def _audit_shared(args: argparse.Namespace, url: str) -> int:
    """``pvemcp audit verify|head postgresql://…``: the shared ledger, checked like a ledger file
    (0 intact, 1 tampered, 2 usage or I/O error; ``--reanchor`` is file-only)."""
    action = args.audit_command
    key_arg = getattr(args, "key_file", None) or os.environ.get("PVEMCP_AUDIT_KEY_FILE", "").strip()
    if not key_arg:
        print(f"pvemcp audit {action}: a shared ledger needs its key: --key-file FILE", file=sys.stderr)
        return 2
    if getattr(args, "reanchor", False):
        print(f"pvemcp audit {action}: --reanchor applies to ledger files only", file=sys.stderr)
        return 2
    try:
        key = load_key(Path(key_arg).expanduser())
        expect = getattr(args, "expect_head", None)
        report = asyncio.run(verify_database(url, key, expect_head=parse_head(expect) if expect else None))
    except LedgerError as exc:
        print(f"pvemcp audit {action}: {exc}", file=sys.stderr)
        return 2
    return _print_verdict(action, report)


def _print_verdict(action: str, report: VerifyReport) -> int:
    """Print what ``pvemcp audit verify|head`` found and return its exit code: 0 intact, 1 tampered.
    One ending for a ledger file and a shared database's ledger, so both answer alike."""
    if action == "head" and report.intact:
        print(HeadAnchor(report.last_seq, report.head).text())
        return 0
    print(report.format())
    return 0 if report.intact else 1


def cmd_spec(args: argparse.Namespace) -> int:
    """``pvemcp spec build`` (from apidoc.json) and ``pvemcp spec pull`` (from the cluster)."""
    if args.spec_command == "build":
        return _spec_build(args)
    return _spec_pull(args)


def _spec_build(args: argparse.Namespace) -> int:
    """``pvemcp spec build --from APIDOC --out openapi.json``."""
    source = Path(args.source)
    if not source.is_file():
        print(f"pvemcp spec build: {source} does not exist", file=sys.stderr)
        return 2
    text = build_openapi(source)
    Path(args.out).write_text(text, encoding="utf-8")
    document = json.loads(text)
    count = sum(len(v) for v in document["paths"].values())
    print(f"wrote {args.out}: {len(document['paths'])} paths, {count} operations", file=sys.stderr)
    return 0


def _spec_pull(args: argparse.Namespace) -> int:
    """``pvemcp spec pull [--cluster NAME] [--refresh]``: each cluster's own schema, cached per PVE version."""

    def fail(message: str, code: int = 2) -> int:
        print(f"pvemcp spec pull: {message}", file=sys.stderr)
        return code

    try:
        config = load_app_config(config_path=getattr(args, "config", None))
    except ValueError as exc:
        return fail(str(exc))
    directory = spec_dir()
    if directory is None:
        return fail("the cache is off (PVEMCP_CACHE_DIR=off): there is nowhere to keep the pulled schema")
    names = [args.cluster] if getattr(args, "cluster", None) else list(config.clusters)
    unknown = [n for n in names if n not in config.clusters]
    if unknown:
        return fail(f"no cluster named {unknown[0]!r}; configured: {', '.join(config.clusters)}")
    bundled = load_spec(bundled_spec_path())
    status = 0
    for name in names:
        try:
            lines = anyio.run(pull, config.clusters[name], directory, bundled, bool(getattr(args, "refresh", False)))
        except PullError as exc:
            print(f"pvemcp spec pull: cluster {name}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"cluster {name}:")
        for line in lines:
            print(f"  {line}")
    return status
