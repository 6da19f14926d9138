"""``jsonload.loads``: the fast parser when installed, and the standard library for whatever it refuses."""

from __future__ import annotations

import json

import pytest

from pvemcp.core.pve import jsonload


def test_parses_an_envelope() -> None:
    assert jsonload.loads(b'{"data": [{"vmid": 100, "cpu": 0.25, "name": "web"}]}') == {
        "data": [{"vmid": 100, "cpu": 0.25, "name": "web"}]
    }


def test_an_integer_beyond_64_bits_is_still_read() -> None:
    """orjson refuses integers beyond 64 bits; Perl's JSON may write them: the fallback reads them."""
    big = 2**70
    assert jsonload.loads(json.dumps({"data": big}).encode()) == {"data": big}


@pytest.mark.parametrize("content", [b"", b"<html>502 Bad Gateway</html>", b'{"data": ', b"\xff\xfe"])
def test_what_is_not_json_raises_value_error(content: bytes) -> None:
    with pytest.raises(ValueError):
        jsonload.loads(content)
