"""Fixtures of the reliability suite, and the summary that reports how many cases actually ran."""

from __future__ import annotations

import pytest

from .helpers import COUNTS, FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the case counts (fuzz cases, fault scenarios, load calls) and figures whatever ``-s`` says.

    They are also stored in pytest's cache (``.pytest_cache``, key ``pvemcp/reliability``) so that a
    CI step can read them back: ``pytest --cache-show 'pvemcp/*'``.
    """
    if not COUNTS and not FIGURES:
        return
    terminalreporter.section("pvemcp reliability: cases run")
    width = max(len(k) for k in [*COUNTS, *FIGURES])
    for key in sorted(COUNTS):
        terminalreporter.write_line(f"{key:<{width}}  {COUNTS[key]:>8,}")
    for key in sorted(FIGURES):
        terminalreporter.write_line(f"{key:<{width}}  {FIGURES[key]}")
    config = terminalreporter.config
    cache = getattr(config, "cache", None)
    if cache is not None:
        cache.set("pvemcp/reliability", {"counts": dict(sorted(COUNTS.items())), "figures": dict(FIGURES)})
