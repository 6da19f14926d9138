"""``pvemcp sim`` as a process: banner on the first stdout line, serves until SIGTERM, exits 0."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys

import httpx2
import pytest
from cryptography import x509

from pvemcp.sim.tls import fingerprint_of


def _pinned_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # pinning instead: the served certificate's fingerprint is compared below
    return ctx


def test_cli_banner_and_clean_stop() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvemcp", "sim", "--port", "0", "--guests", "5", "--seed", "7", "--task-speed", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        banner = json.loads(line)
        assert set(banner) >= {"url", "fingerprint", "user", "password", "token_id", "token_secret"}
        assert banner["url"].startswith("https://127.0.0.1:") and banner["url"].endswith("/api2/json")
        assert banner["user"] == "root@pam" and banner["token_id"] == "root@pam!pvemcp"
        assert banner["readonly_token_id"] == "auditor@pve!ro"
        headers = {"Authorization": f"PVEAPIToken={banner['token_id']}={banner['token_secret']}"}
        with httpx2.Client(verify=_pinned_context(), headers=headers, timeout=10) as c:
            r = c.get(banner["url"] + "/cluster/resources", params={"type": "vm"})
            assert r.status_code == 200 and len(r.json()["data"]) == 5
        port = int(banner["url"].split(":")[2].split("/")[0])
        pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=10)
        assert fingerprint_of(x509.load_pem_x509_certificate(pem.encode())) == banner["fingerprint"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail("pvemcp sim did not stop on SIGTERM")
    assert proc.returncode == 0, err
    assert out == ""  # only the banner went to stdout
    assert "pvemcp sim: serving 3 nodes and 5 guests" in err
    assert banner["password"] not in err and banner["token_secret"] not in err


def test_cli_rejects_bad_faults() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pvemcp", "sim", "--port", "0", "--faults", "explode=1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == "" and "unknown fault" in proc.stderr
