"""The risk classes ``read < write < destructive``: the one type of a risk in pvemcp.

A tool declares its class in ``tools.yaml``, the classifier (:mod:`pvemcp.core.policy.risk`) derives one
for any API call, the policy names classes in its rules, and decisions, plans and the ledger carry one.
The enum lives apart from the classifier so that the catalog, which every server start loads, can type
its tools' risk without compiling the classifier's rules. Its values are the wire words: a ``Risk`` is a
``str``, so listings, ledger records and texts read ``"destructive"`` as they always did.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Risk", "max_risk", "parse_risk"]


class Risk(StrEnum):
    """How much harm a call can do; ordered ``read < write < destructive``."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        """Position in the order read < write < destructive (for comparisons and ``max``)."""
        return _RANK[self]


_RANK: dict[Risk, int] = {Risk.READ: 0, Risk.WRITE: 1, Risk.DESTRUCTIVE: 2}


def parse_risk(value: object) -> Risk:
    """Turn a risk named outside the code (``tools.yaml``, a policy key) into a :class:`Risk`.

    Anything that is not exactly one of the three names (case and surrounding space ignored) is
    ``destructive``: a typo in a catalog must make a tool harder to run, not easier.
    """
    if isinstance(value, Risk):
        return value
    if isinstance(value, str):
        try:
            return Risk(value.strip().lower())
        except ValueError:
            return Risk.DESTRUCTIVE
    return Risk.DESTRUCTIVE


def max_risk(risks: Iterable[Risk]) -> Risk:
    """The highest of several risks (a batch, or a tool's declared risk and its calls' risks).

    An empty iterable is ``read``: nothing will be done. Anything that is not a :class:`Risk` counts
    as ``destructive`` (fail closed, as :func:`parse_risk`).
    """
    best = Risk.READ
    for r in risks:
        risk = parse_risk(r)
        if risk.rank > best.rank:
            best = risk
    return best
