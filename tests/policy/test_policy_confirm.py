"""Confirmation tokens: valid once; reused, expired, forged, swapped, other tool/caller refused."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure, ConfirmationStore


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


ARGS: dict[str, Any] = {"vmid": 100, "node": "pve1", "timeout": 30, "extra": {"b": 1, "a": [1, 2]}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> ConfirmationStore:
    return ConfirmationStore(secret=b"s" * 32, ttl_s=300, clock=clock)


def refused(
    store: ConfirmationStore, token: object, tool: str, args: dict[str, Any], caller: str | None
) -> ConfirmationFailure:
    with pytest.raises(ConfirmationError) as info:
        store.redeem(token, tool, args, caller)
    return info.value.reason


def test_token_is_short_and_url_safe(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) <= 48
    assert store.issue("guest_stop", ARGS, "alice") != token  # a fresh nonce each time


def test_valid_once(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    store.redeem(token, "guest_stop", ARGS, "alice")
    assert refused(store, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.USED


def test_binding_ignores_key_order_and_the_token_field(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", {**ARGS, "confirm_token": "old"}, "alice")
    reordered = {"extra": {"a": [1, 2], "b": 1}, "timeout": 30, "node": "pve1", "vmid": 100, "confirm_token": token}
    store.redeem(token, "guest_stop", reordered, "alice")


@pytest.mark.parametrize(
    "changed",
    [
        {**ARGS, "vmid": 101},
        {**ARGS, "timeout": 31},
        {**ARGS, "timeout": 30.5},
        {**ARGS, "extra": {"b": 1, "a": [2, 1]}},
        {**ARGS, "force": 1},
        {k: v for k, v in ARGS.items() if k != "timeout"},
        {**ARGS, "vmid": "100"},
    ],
)
def test_swapped_arguments_are_refused_without_consuming(store: ConfirmationStore, changed: dict[str, Any]) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    assert refused(store, token, "guest_stop", changed, "alice") is ConfirmationFailure.OTHER_ARGUMENTS
    store.redeem(token, "guest_stop", ARGS, "alice")  # still good for the previewed call


def test_other_tool(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    assert refused(store, token, "guest_delete", ARGS, "alice") is ConfirmationFailure.OTHER_TOOL


def test_other_caller(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    assert refused(store, token, "guest_stop", ARGS, "mallory") is ConfirmationFailure.OTHER_CALLER
    assert refused(store, token, "guest_stop", ARGS, None) is ConfirmationFailure.OTHER_CALLER
    store.redeem(token, "guest_stop", ARGS, "alice")


def test_anonymous_caller_binding(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, None)
    assert refused(store, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.OTHER_CALLER
    store.redeem(token, "guest_stop", ARGS, None)


def test_expired(store: ConfirmationStore, clock: FakeClock) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    clock.now += 299.9
    other = store.issue("guest_stop", ARGS, "alice")
    store.redeem(other, "guest_stop", ARGS, "alice")
    clock.now += 0.1  # exactly 300 s after the first issue
    assert refused(store, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.EXPIRED


def test_expired_is_still_expired_after_pruning(store: ConfirmationStore, clock: FakeClock) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    clock.now += 1000
    assert store.prune() == 1 and len(store) == 0
    assert refused(store, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.EXPIRED


def test_used_then_expired_reports_expired(store: ConfirmationStore, clock: FakeClock) -> None:
    token = store.issue("t", ARGS, "c")
    store.redeem(token, "t", ARGS, "c")
    clock.now += 301
    assert refused(store, token, "t", ARGS, "c") is ConfirmationFailure.EXPIRED


def _flip(token: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c = token[index]
    return token[:index] + alphabet[(alphabet.index(c) + 1) % 64] + token[index + 1 :]


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: _flip(t, 0),  # nonce
        lambda t: _flip(t, 17),  # expiry (pushing it out must not work)
        lambda t: _flip(t, 30),  # MAC
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t + "==",
        lambda t: "not a token",
        lambda t: "",
        lambda t: "A" * 46,
        lambda t: "é" * 46,
        lambda t: t * 3,
    ],
)
def test_forged_tokens_are_unknown(store: ConfirmationStore, forge: Any) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    assert refused(store, forge(token), "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN
    store.redeem(token, "guest_stop", ARGS, "alice")


@pytest.mark.parametrize("bad", [None, 123, b"bytes", ["x"]])
def test_non_string_tokens_are_unknown(store: ConfirmationStore, bad: object) -> None:
    assert refused(store, bad, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN


def test_token_of_another_store_is_unknown(clock: FakeClock) -> None:
    a = ConfirmationStore(secret=b"a" * 32, clock=clock)
    b = ConfirmationStore(secret=b"b" * 32, clock=clock)
    token = a.issue("guest_stop", ARGS, "alice")
    assert refused(b, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN
    # Same secret (e.g. after a restart with a configured secret) but never issued there: unknown too.
    c = ConfirmationStore(secret=b"a" * 32, clock=clock)
    assert refused(c, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN


def test_every_reason_has_its_own_message() -> None:
    messages = {str(ConfirmationError(r)) for r in ConfirmationFailure}
    assert len(messages) == len(ConfirmationFailure)
    assert "without confirm_token" in str(ConfirmationError(ConfirmationFailure.EXPIRED))


def test_memory_is_bounded_by_pruning(store: ConfirmationStore, clock: FakeClock) -> None:
    for _ in range(1000):
        store.issue("t", ARGS, "c")
        clock.now += 1.0
    assert len(store) <= 301


def test_memory_is_bounded_by_max_entries(clock: FakeClock) -> None:
    store = ConfirmationStore(secret=b"s" * 32, clock=clock, max_entries=3)
    tokens = [store.issue("t", {"i": i}, "c") for i in range(5)]
    assert len(store) == 3
    assert refused(store, tokens[0], "t", {"i": 0}, "c") is ConfirmationFailure.UNKNOWN
    store.redeem(tokens[4], "t", {"i": 4}, "c")


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        ConfirmationStore(ttl_s=0)
    with pytest.raises(ValueError):
        ConfirmationStore(secret=b"short")
    with pytest.raises(ValueError):
        ConfirmationStore(max_entries=0)


def test_default_store_uses_a_random_secret() -> None:
    a, b = ConfirmationStore(), ConfirmationStore()
    token = a.issue("t", {}, None)
    a.redeem(a.issue("t", {}, None), "t", {}, None)
    with pytest.raises(ConfirmationError):
        b.redeem(token, "t", {}, None)


def test_concurrent_redeems_spend_a_token_once_asyncio(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")

    async def attempt() -> bool:
        await asyncio.sleep(0)
        try:
            store.redeem(token, "guest_stop", ARGS, "alice")
        except ConfirmationError:
            return False
        return True

    async def main() -> list[bool]:
        return await asyncio.gather(*(attempt() for _ in range(50)))

    assert sum(asyncio.run(main())) == 1


def test_concurrent_redeems_spend_a_token_once_threads(store: ConfirmationStore) -> None:
    token = store.issue("guest_stop", ARGS, "alice")
    wins: list[int] = []
    start = threading.Barrier(16)

    def attempt() -> None:
        start.wait()
        try:
            store.redeem(token, "guest_stop", ARGS, "alice")
            wins.append(1)
        except ConfirmationError:
            pass

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_non_json_arguments_are_a_programming_error(store: ConfirmationStore) -> None:
    with pytest.raises(TypeError):
        store.issue("t", {"x": object()}, None)
    with pytest.raises(ValueError):
        store.issue("t", {"x": float("nan")}, None)
