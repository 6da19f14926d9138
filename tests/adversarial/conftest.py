"""Fixtures of the adversarial suite: a fresh simulator per test (its request log is the witness)."""

from __future__ import annotations

import pytest

from simenv import DEFAULT_SIM, SimOptions


@pytest.fixture
def sim_options() -> SimOptions:
    """Seed 1: VMIDs 100-110 and template 9000 on pve1-3; tags dev on 105, 106, 109, 110; fast tasks."""
    return {**DEFAULT_SIM, "task_speed": 200.0}
