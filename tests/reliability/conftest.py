"""Fixtures of the reliability suite, and the summary that reports how many cases actually ran."""

from __future__ import annotations

import pytest

from .helpers import COUNTS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the case counts (fuzz cases, fault scenarios, load calls) whatever ``-s`` says.

    They are also stored in pytest's cache (``.pytest_cache``, key ``pvemcp/reliability``) so that a
    CI step can read them back: ``pytest --cache-show 'pvemcp/*'``.
    """
    if not COUNTS:
        return
    terminalreporter.section("pvemcp reliability: cases run")
    for key in sorted(COUNTS):
        terminalreporter.write_line(f"{key:<40} {COUNTS[key]:>8,}")
    config = terminalreporter.config
    if getattr(config, "cache", None) is not None:
        config.cache.set("pvemcp/reliability", dict(sorted(COUNTS.items())))
