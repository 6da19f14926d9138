"""Client configuration: clear validation errors, and no secret in any message or repr."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig, ConfigError

SECRET = "5f0e1d2c-3b4a-5968-7788-99aabbccddee"
PASSWORD = "hunter2-correct-horse"
FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"


def test_token_config_and_url_normalisation() -> None:
    cfg = ClientConfig(url="pve.example", token_id="root@pam!mcp", token_secret=SECRET)
    assert cfg.url == "https://pve.example:8006/api2/json"
    assert cfg.auth_mode == "token" and cfg.identity == "root@pam!mcp"
    assert cfg.host_port == "pve.example:8006"
    for url in ("https://pve.example:8006", "https://pve.example:8006/", "https://pve.example:8006/api2/json/"):
        assert ClientConfig(url=url, token_id="root@pam!mcp", token_secret=SECRET).url == cfg.url
    assert (
        ClientConfig(url="https://[::1]:9000", token_id="a@pve!bb", token_secret=SECRET).url
        == "https://[::1]:9000/api2/json"
    )


def test_repr_and_str_redact_secrets() -> None:
    for cfg in (
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET),
        ClientConfig(url="h", user="root@pam", password=PASSWORD),
    ):
        for text in (repr(cfg), str(cfg), f"{cfg}", f"{cfg!r}"):
            assert SECRET not in text and PASSWORD not in text
            assert "***" in text


def test_fingerprint_normalised() -> None:
    lower = FP.lower().replace(":", "")
    cfg = ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, fingerprint=lower)
    assert cfg.fingerprint == FP
    cfg2 = ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, fingerprint=f"sha256 Fingerprint={FP}")
    assert cfg2.fingerprint == FP


def test_secret_files(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")
    cfg = ClientConfig(url="h", token_id="root@pam!mcp", token_secret_file=f)
    assert cfg.token_secret == SECRET
    p = tmp_path / "pw"
    p.write_text(PASSWORD + "\n")
    assert ClientConfig(url="h", user="root@pam", password_file=p).password == PASSWORD


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"url": "http://pve:8006", "token_id": "root@pam!mcp", "token_secret": SECRET}, "https"),
        ({"url": "https://root:pw@pve", "token_id": "root@pam!mcp", "token_secret": SECRET}, "credentials"),
        ({"url": "https://pve/other", "token_id": "root@pam!mcp", "token_secret": SECRET}, "path"),
        ({"url": ""}, "url is empty"),
        ({"url": "h"}, "no credentials"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "user": "root@pam"}, "not both"),
        ({"url": "h", "token_id": "root!mcp", "token_secret": SECRET}, "user@realm!tokenname"),
        ({"url": "h", "token_id": "root@pam!mcp"}, "token_secret"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET + " x"}, "whitespace"),
        ({"url": "h", "user": "root", "password": PASSWORD}, "realm"),
        ({"url": "h", "user": "root@pam"}, "password"),
        ({"url": "h", "user": "root@pam", "password": PASSWORD + "\n"}, "control"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "fingerprint": "AB:CD"}, "fingerprint"),
        (
            {"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "fingerprint": FP, "insecure": True},
            "contradict",
        ),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "verify_tls": False}, "insecure=True"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "max_concurrency": 0}, "max_concurrency"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "read_timeout_s": 0}, "read_timeout_s"),
        ({"url": "h", "token_id": "root@pam!mcp", "token_secret": SECRET, "retries": 0}, "retries"),
    ],
)
def test_validation_errors_are_clear_and_secret_free(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClientConfig(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert needle in message
    assert SECRET not in message and PASSWORD not in message


def test_secret_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret_file=empty)
    with pytest.raises(ConfigError, match="cannot be read"):
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="not both"):
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, token_secret_file=empty)


def test_from_env() -> None:
    env = {
        "PVE_URL": "https://pve:8006",
        "PVE_TOKEN_ID": "root@pam!mcp",
        "PVE_TOKEN_SECRET": SECRET,
        "PVE_FINGERPRINT": FP,
    }
    cfg = ClientConfig.from_env(env)
    assert cfg.fingerprint == FP and cfg.token_secret == SECRET
    with pytest.raises(ConfigError, match="PVE_URL"):
        ClientConfig.from_env({})
    with pytest.raises(ConfigError, match="PVE_INSECURE"):
        ClientConfig.from_env({**env, "PVE_INSECURE": "maybe"})


@pytest.mark.anyio
async def test_insecure_warns_at_every_start(caplog: pytest.LogCaptureFixture) -> None:
    cfg = ClientConfig(url="https://127.0.0.1:1", token_id="root@pam!mcp", token_secret=SECRET, insecure=True)
    assert cfg.verify_tls is False
    caplog.set_level(logging.WARNING, logger="pvemcp")
    for _ in range(2):
        async with PveClient(cfg):
            pass
    warnings = [r for r in caplog.records if r.name.startswith("pvemcp") and "DISABLED" in r.getMessage()]
    assert len(warnings) == 2
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_retry_statuses_from_a_list() -> None:
    cfg = ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, retry_statuses=[502, 503])  # type: ignore[arg-type]
    assert cfg.retry_statuses == frozenset({502, 503})
    hash(cfg)  # still hashable
    with pytest.raises(ConfigError, match="5xx"):
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, retry_statuses=frozenset({404}))
    with pytest.raises(ConfigError, match="max_concurrency"):
        ClientConfig(url="h", token_id="root@pam!mcp", token_secret=SECRET, max_concurrency=True)


def test_env_verify_tls_0_is_the_explicit_opt_out() -> None:
    """The README documents both names; each alone turns verification off, together they must agree."""
    env = {"PVE_URL": "https://pve:8006", "PVE_TOKEN_ID": "root@pam!mcp", "PVE_TOKEN_SECRET": SECRET}
    for extra in ({"PVE_VERIFY_TLS": "0"}, {"PVE_INSECURE": "1"}, {"PVE_VERIFY_TLS": "0", "PVE_INSECURE": "1"}):
        cfg = ClientConfig.from_env({**env, **extra})
        assert cfg.insecure is True and cfg.verify_tls is False, extra
    assert ClientConfig.from_env({**env, "PVE_VERIFY_TLS": "1"}).insecure is False
    with pytest.raises(ConfigError, match="contradict"):
        ClientConfig.from_env({**env, "PVE_VERIFY_TLS": "1", "PVE_INSECURE": "1"})
    with pytest.raises(ConfigError, match="contradict"):  # no verification *and* a pin: keep the pin
        ClientConfig.from_env({**env, "PVE_VERIFY_TLS": "0", "PVE_FINGERPRINT": FP})
