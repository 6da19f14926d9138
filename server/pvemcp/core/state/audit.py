"""``pvemcp audit verify|head postgresql://…``: the shared ledger, checked like a ledger file."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pvemcp.core.policy.ledger import LedgerError, load_key, parse_head, print_verdict

__all__ = ["cmd_audit_shared"]


def cmd_audit_shared(args: argparse.Namespace, url: str) -> int:
    """0 intact, 1 tampered, 2 usage or I/O error — as for a file (``--reanchor`` is file-only)."""
    action = args.audit_command
    key_arg = getattr(args, "key_file", None) or os.environ.get("PVEMCP_AUDIT_KEY_FILE", "").strip()
    if not key_arg:
        print(f"pvemcp audit {action}: a shared ledger needs its key: --key-file FILE", file=sys.stderr)
        return 2
    if getattr(args, "reanchor", False):
        print(f"pvemcp audit {action}: --reanchor applies to ledger files only", file=sys.stderr)
        return 2
    try:
        from pvemcp.core.state.postgres import verify_database

        key = load_key(Path(key_arg).expanduser())
        expect = getattr(args, "expect_head", None)
        report = asyncio.run(verify_database(url, key, expect_head=parse_head(expect) if expect else None))
    except LedgerError as exc:
        print(f"pvemcp audit {action}: {exc}", file=sys.stderr)
        return 2
    return print_verdict(action, report)
