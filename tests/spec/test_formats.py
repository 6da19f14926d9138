"""PVE named formats: PVE's messages, JSON Schema regexes that agree with them, Perl regex translation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pvemcp.dialect.formats import (
    KNOWN_FORMATS,
    PROPERTY_STRING_TYPETEXTS,
    UNCHECKED_FORMATS,
    check_format,
    format_pattern,
    is_known_format,
    pve_pattern_to_ecma,
    split_list,
)
from pvemcp.dialect.propstring import schema_from_typetext

VM_ID = "value does not look like a valid VM ID\n"

# (format, value, PVE's message or None): the expectations, written from the PVE sources.
CASES: list[tuple[str, Any, str | None]] = [
    ("pve-vmid", "100", None),
    ("pve-vmid", "999999999", None),
    ("pve-vmid", 4711, None),
    ("pve-vmid", "99", VM_ID),
    ("pve-vmid", 99, VM_ID),
    ("pve-vmid", "1000000000", VM_ID),
    ("pve-vmid", "0100", VM_ID),
    ("pve-vmid", "abc", VM_ID),
    ("pve-node", "pve1", None),
    ("pve-node", "node-1", None),
    ("pve-node", "-x", "value does not look like a valid node name\n"),
    ("pve-node", "a_b", "value does not look like a valid node name\n"),
    ("pve-node", "a.b", "value does not look like a valid node name\n"),
    ("pve-configid", "snap1", None),
    ("pve-configid", "Before_Upgrade-2", None),
    ("pve-configid", "1snap", "invalid configuration ID '1snap'\n"),
    ("pve-configid", "a", "invalid configuration ID 'a'\n"),
    ("pve-storage-id", "local-lvm", None),
    ("pve-storage-id", "Local_zfs.2", None),
    ("pve-storage-id", "a", "storage ID 'a' contains illegal characters\n"),
    ("pve-storage-id", "local-", "storage ID 'local-' contains illegal characters\n"),
    ("dns-name", "host.example.com", None),
    ("dns-name", "my_vm", "value does not look like a valid DNS name\n"),
    ("dns-name", "a..b", "value does not look like a valid DNS name\n"),
    ("mac-addr", "BC:24:11:00:00:01", None),
    ("mac-addr", "bc:24:11:4e:8f:d1", None),
    ("mac-addr", "5D:CF:BD:B2:C5:39", "value does not look like a valid unicast MAC address\n"),
    ("mac-addr", "BC-24-11-00-00-01", "value does not look like a valid unicast MAC address\n"),
    ("mac-prefix", "BC:24:11", None),
    ("mac-prefix", "BD:24", "value is not a valid unicast MAC address prefix\n"),
    ("ipv4", "10.0.0.1", None),
    ("ipv4", "256.1.1.1", "value does not look like a valid IPv4 address\n"),
    ("ipv4", "01.2.3.4", "value does not look like a valid IPv4 address\n"),
    ("ipv6", "fe80::1", None),
    ("ipv6", "::", None),
    ("ipv6", "2001:db8::1:2:3:4:5", None),
    ("ipv6", "::ffff:10.0.0.1", None),
    ("ipv6", "1:2:3:4:5:6:7:8:9", "value does not look like a valid IPv6 address\n"),
    ("ip", "fe80::1", None),
    ("ip", "example.com", "value does not look like a valid IP address\n"),
    ("CIDR", "10.0.0.0/8", None),
    ("CIDR", "fd00::/64", None),
    ("CIDR", "10.0.0.0/7", "value does not look like a valid CIDR network\n"),
    ("CIDR", "10.0.0.1", "value does not look like a valid CIDR network\n"),
    ("CIDRv4", "192.168.0.1/24", None),
    ("CIDRv4", "192.168.0.1/024", None),
    ("CIDRv4", "192.168.0.1/33", "value does not look like a valid IPv4 CIDR network\n"),
    ("CIDRv6", "fd00::/128", None),
    ("CIDRv6", "fd00::/7", "value does not look like a valid IPv6 CIDR network\n"),
    ("IPorCIDR", "10.0.0.0/24", None),
    ("IPorCIDR", "host", "value does not look like a valid IP address or CIDR network\n"),
    ("IPorCIDRorAlias", "myalias", None),
    ("IPorCIDRorAlias", "dc/myalias", None),
    ("IPorCIDRorAlias", "1bad", "value does not look like a valid IP address or CIDR network\n"),
    ("ipv4mask", "255.255.255.0", None),
    ("ipv4mask", "255.0.255.0", "value does not look like a valid IP netmask\n"),
    ("pve-ipv4-config", "dhcp", None),
    ("pve-ipv4-config", "10.0.0.2/24", None),
    ("pve-ipv4-config", "auto", "value does not look like a valid ipv4 network configuration\n"),
    ("pve-ipv6-config", "auto", None),
    ("pve-ipv6-config", "fd00::2/64", None),
    ("pve-ipv6-config", "10.0.0.2/24", "value does not look like a valid ipv6 network configuration\n"),
    ("address", "pve.example.com", None),
    ("address", "10.0.0.1", None),
    ("address", "bad host", "value does not look like a valid address: bad host\n"),
    ("pve-iface", "vmbr0", None),
    ("pve-iface", "eth0.100", None),
    ("pve-iface", "0eth", "invalid network interface name '0eth'\n"),
    ("pve-iface", "e", "invalid network interface name 'e'\n"),
    ("pve-bridge-id", "vmbr0", None),
    ("pve-bridge-id", "vmbr 0", "invalid bridge ID 'vmbr 0'\n"),
    ("pve-tag-list", "tag1;tag2", None),
    ("pve-tag-list", "prod web,db", None),
    ("pve-tag-list", "ok bad!", "invalid characters in tag\n"),
    ("pve-vmid-list", "100,101;102 103", None),
    ("pve-vmid-list", "", None),
    ("pve-vmid-list", "100,99", VM_ID),
    ("pve-node-list", "pve1,pve2", None),
    ("pve-configid-list", "net0,scsi1", None),
    ("pve-storage-id-list", "local,local-lvm", None),
    ("pve-iface-list", "eth0 eth1", None),
    ("pve-bridge-id-list", "vmbr0,vmbr1", None),
    ("dns-name-list", "example.com;example.org", None),
    ("ip-list", "10.0.0.1,fd00::1", None),
    ("address-list", "10.0.0.1 dns.example.com", None),
    ("email", "root@example.com", None),
    ("email", "root", "value does not look like a valid email address\n"),
    ("email-opt", "", None),
    ("email-opt", "0", None),
    ("email-opt", "not an email", "value does not look like a valid email address\n"),
    ("email-list", "a@example.com,b@example.com", None),
    ("email-or-username", "root", None),
    ("email-or-username", "bad user", "value does not look like a valid email address or user name\n"),
    ("email-or-username-list", "root,admin@example.com", None),
    ("pve-userid", "root@pam", None),
    ("pve-userid", "root", "value 'root' does not look like a valid user name\n"),
    ("pve-userid", "ab", "user name 'ab' is too short\n"),
    ("pve-userid", "", "user name '' is too short\n"),
    ("pve-userid", "a" * 61 + "@pve", f"user name '{'a' * 61}@pve' is too long (65 > 64)\n"),
    ("pve-userid", "a b@pam", "value 'a b@pam' does not look like a valid user name\n"),
    ("pve-userid-list", "root@pam,admin@pve", None),
    ("pve-tokenid-list", "root@pam!ci", None),
    ("pve-tokenid-list", "root@pam", "value 'root@pam' does not look like a valid token ID\n"),
    ("pve-realm", "pam", None),
    ("pve-realm", "p", "value does not look like a valid realm\n"),
    ("pve-groupid", "admins", None),
    ("pve-groupid", "ad mins", "group name 'ad mins' contains invalid characters\n"),
    ("pve-groupid-list", "admins,ops", None),
    ("pve-roleid", "PVEAuditor", None),
    ("pve-roleid-list", "PVEAuditor;PVEVMUser", None),
    ("pve-roleid", "role!", "role name 'role!' contains invalid characters\n"),
    ("pve-poolid", "prod", None),
    ("pve-poolid", "prod/web/db", None),
    ("pve-poolid", "a/b/c/d", "pool name 'a/b/c/d' nested too deeply (max levels = 3)\n"),
    ("pve-poolid", "a b", "pool name 'a b' contains invalid characters\n"),
    ("pve-storage-content", "images", None),
    ("pve-storage-content", "import", None),
    ("pve-storage-content", "disk", "invalid content type 'disk'\n"),
    ("pve-storage-content-list", "images,rootdir", None),
    ("pve-storage-path", "/mnt/data", None),
    ("pve-storage-path", "/mnt;rm", None),  # PVE's regex is not anchored at the end
    ("pve-storage-path", "mnt", "value does not look like a valid absolute path\n"),
    ("pve-storage-server", "nas.local", None),
    ("pve-storage-server", "nas_1", "value does not look like a valid server name or IP address\n"),
    ("pve-storage-vgname", "pve", None),
    ("pve-storage-vgname", "-pve", "lvm name '-pve' contains illegal characters\n"),
    ("pve-storage-portal-dns", "10.0.0.5:3260", None),
    ("pve-storage-portal-dns", "[fd00::5]:3260", None),
    ("pve-storage-portal-dns", "fd00::5", None),
    ("pve-storage-portal-dns", "bad portal!", "value does not look like a valid portal address\n"),
    ("pve-storage-portal-dns-list", "10.0.0.5 10.0.0.6:6789", None),
    ("pve-storage-options", "vers=4.2,soft", None),
    ("pve-storage-options", "a b", "invalid options 'a b'\n"),
    ("pve-volume-id", "local:iso/debian.iso", None),
    ("pve-volume-id", "local", "unable to parse volume ID 'local'\n"),
    ("pve-volume-id-or-qm-path", "none", None),
    ("pve-volume-id-or-qm-path", "cdrom", None),
    ("pve-volume-id-or-qm-path", "/dev/sdb", None),
    ("pve-volume-id-or-qm-path", "local-lvm:vm-100-disk-0", None),
    ("pve-volume-id-or-qm-path", "vm-100-disk-0", "unable to parse volume ID 'vm-100-disk-0'\n"),
    ("pve-volume-id-or-absolute-path", "none", "unable to parse volume ID 'none'\n"),
    ("pve-volume-id-or-absolute-path", "/var/lib/vz/images/disk.qcow2", None),
    ("disk-size", "32G", None),
    ("disk-size", "1.5T", None),
    ("disk-size", "1024", None),
    ("disk-size", "32GB", "value does not look like a valid disk size: 32GB\n"),
    ("urlencoded", "Hello%20World", None),
    ("urlencoded", "a b", "invalid urlencoded string: a b\n"),
    ("pve-startup-order", "order=1,up=30,down=60", None),
    ("pve-startup-order", "2", None),
    ("pve-startup-order", ",", None),
    ("pve-startup-order", "0", "unable to parse startup options\n"),  # Perl: "0" is false
    ("pve-startup-order", "order=x", "unable to parse startup options\n"),
    ("pve-qm-bootdisk", "scsi0", None),
    ("pve-qm-bootdisk", "virtio15", None),
    ("pve-qm-bootdisk", "virtio16", "invalid boot disk 'virtio16'\n"),
    ("pve-qm-bootdisk", "scsi31", "invalid boot disk 'scsi31'\n"),
    ("pve-hotplug-features", "network,disk,usb", None),
    ("pve-hotplug-features", "0", None),
    ("pve-hotplug-features", "1", None),
    ("pve-hotplug-features", "network,floppy", "invalid hotplug feature 'floppy'\n"),
    ("pve-cpuset", "0,5,8-11", None),
    ("pve-cpuset", "3-1", "unable to parse cpuset option\n"),
    ("pve-cpuset", "a", "unable to parse cpuset option\n"),
    ("pve-lxc-mp-string", "/mnt/data", None),
    ("pve-lxc-mp-string", "local:subvol-100-disk-0", None),
    ("pve-lxc-mp-string", "/mnt/../etc", "/mnt/../etc contains illegal character sequences\n"),
    ("pve-lxc-mp-string", "../x", "../x contains illegal character sequences\n"),
    ("pve-lxc-dev-string", "/dev/dri/card0", None),
    ("pve-lxc-dev-string", "/dev/../etc", "/dev/../etc is not a valid device path\n"),
    ("pve-lxc-dev-string", "/tmp/x", "/tmp/x is not a valid device path\n"),
    ("lxc-ip-with-ll-iface-list", "10.0.0.1 fe80::1%eth0", None),
    ("lxc-ip-with-ll-iface-list", "fe80::1%0bad", "value does not look like a valid IP address\n"),
    ("pve-vlan-id-or-range-list", "2 4 100-200", None),
    ("pve-vlan-id-or-range-list", "5-0", None),  # Perl: `if ($end)` skips the range checks for "0"
    ("pve-vlan-id-or-range-list", "1", "invalid VLAN tag '1'\n"),
    ("pve-vlan-id-or-range-list", "4095", "invalid VLAN tag '4095'\n"),
    ("pve-vlan-id-or-range-list", "200-100", "VLAN range must go from lower to higher tag '200-100'\n"),
    ("pve-vlan-id-or-range-list", "x", "invalid VLAN configuration 'x'\n"),
    ("pve-day-of-week-list", "mon,wed,fri", None),
    ("pve-day-of-week-list", "Mon", "invalid day 'Mon'\n"),
    ("pve-dir-override-list", "iso=isos,backup=dumps/daily", None),
    ("pve-dir-override-list", "disk=x", "invalid content type 'disk'\n"),
    ("pve-dir-override-list", "iso=a..b", "invalid override 'iso=a..b'\n"),
    ("storage-pair-list", "local:local-lvm,nfs:ceph", None),
    ("storage-pair-list", "1", None),
    ("storage-pair-list", "local-lvm", None),
    (
        "storage-pair-list",
        "local:bad_",
        "entry 'local:bad_' contains invalid ID - storage ID 'bad_' contains illegal characters\n\n\n",
    ),
    ("bridge-pair-list", "vmbr0:vmbr1", None),
    (
        "bridge-pair-list",
        "vmbr0:vmbr/1",
        "entry 'vmbr0:vmbr/1' contains invalid ID - invalid bridge ID 'vmbr/1'\n\n\n",
    ),
    ("ldap-simple-attr", "cn", None),
    ("ldap-simple-attr-list", "cn-x", "value 'cn-x' does not look like a simple ldap attribute name\n"),
    ("pve-task-status-type-list", "ok,Error", None),
    ("pve-task-status-type-list", "failed", "invalid status 'failed'\n"),
    ("pve-replication-job-id", "100-0", None),
    ("pve-replication-job-id", "99-1", "invalid replication job id '99-1' (guest IDs < 100 are reseved)\n"),
    ("pve-replication-job-id", "100", "invalid replication job id '100'\n"),
    ("pve-sdn-zone-id", "zone1", None),
    ("pve-sdn-zone-id", "zone1234", None),
    ("pve-sdn-zone-id", "zone12345", "zone ID 'zone12345' can't be more length than 8 characters\n"),
    ("pve-sdn-zone-id", "1zone", "zone ID '1zone' contains illegal characters\n"),
    ("pve-sdn-vnet-id", "vnet1", None),
    ("pve-sdn-vnet-id", "vnet_1", "vnet ID 'vnet_1' contains illegal characters\n"),
    ("pve-sdn-controller-id", "evpn-ctl", None),
    ("pve-sdn-controller-id", "-x", "controller ID '-x' contains illegal characters\n"),
    ("pve-sdn-ipam-id", "pve", None),
    ("pve-sdn-ipam-id", "my-ipam", "ipam ID 'my-ipam' contains illegal characters\n"),
    ("pve-sdn-dns-id", "powerdns", None),
    ("pve-ha-resource-or-vm-id", "vm:100", None),
    ("pve-ha-resource-or-vm-id", "100", None),
    ("pve-ha-resource-or-vm-id", "VM:100", "value does not look like a valid ha resource id\n"),
    ("pve-ha-resource-id-list", "vm:100,ct:101", None),
    ("pve-ha-node-list", "node1:2,node2", None),
    ("pve-ha-node-list", "node_1", "value does not look like a valid ha node\n"),
    ("graphite-path", "proxmox.cluster", None),
    ("graphite-path", "proxmox..cluster", "value does not look like a valid graphite path\n"),
    ("pve-acme-domain", "pve.example.com", None),
    ("pve-acme-domain", "localhost", "value 'localhost' does not look like a valid domain name!\n"),
    ("pve-acme-domain-list", "a.example.com;b.example.com", None),
    ("pve-acme-alias", "_acme.example.com", None),
    ("string-list", "anything at all, really", None),
    # named property strings, checked through the codec
    ("pve-qm-ipconfig", "ip=dhcp,ip6=auto", None),
    ("pve-qm-ipconfig", "ip=dhcp,foo=1", "invalid key in comma-separated list property: foo\n"),
    ("pve-qm-watchdog", "model=i6300esb,action=reset", None),
    (
        "pve-qm-watchdog",
        "model=foo",
        "format error\nmodel: value 'foo' does not have a value in the enumeration 'i6300esb, ib700'\n",
    ),
    ("prune-backups", "keep-last=3,keep-daily=7", None),
    ("prune-backups", "keep-all=1,keep-last=2", "keep-all cannot be set together with other options.\n"),
    ("prune-backups", "keep-last=x", "format error\nkeep-last: type check ('integer') failed - got 'x'\n"),
    ("pve-startup-order", "order=1,up=5", None),
]


@pytest.mark.parametrize(("name", "value", "expected"), CASES, ids=[f"{c[0]}={c[1]!r}" for c in CASES])
def test_check_format_returns_pve_message(name: str, value: Any, expected: str | None) -> None:
    assert check_format(name, value) == expected


def test_every_failure_message_ends_with_a_newline_like_pve() -> None:
    failures = [check_format(name, value) for name, value, expected in CASES if expected is not None]
    assert failures and all(message is not None and message.endswith("\n") for message in failures)


def test_unknown_and_unchecked_formats_accept_anything() -> None:
    assert check_format("pve-format-from-the-future", "!!") is None
    assert format_pattern("pve-format-from-the-future") is None
    for name in UNCHECKED_FORMATS:
        assert check_format(name, "definitely ;; not valid\n") is None, name
        assert format_pattern(name) is None, name
        assert not is_known_format(name), name


def test_known_and_unchecked_do_not_overlap() -> None:
    assert not KNOWN_FORMATS & UNCHECKED_FORMATS
    assert not set(PROPERTY_STRING_TYPETEXTS) & UNCHECKED_FORMATS
    assert not set(PROPERTY_STRING_TYPETEXTS) & KNOWN_FORMATS


def test_values_are_read_as_perl_reads_them() -> None:
    assert check_format("pve-vmid", True) == VM_ID  # JSON true is "1" to Perl
    assert check_format("pve-vmid", 100.0) is None  # Perl prints 100.0 as 100
    assert check_format("pve-vmid", None) is None  # PVE validates no undefined value
    assert check_format("pve-vmid", ["100"]) is None  # PVE's type check fails first, not the format
    # Perl's $ also matches before a final newline, so PVE accepts this; the JSON Schema regex does not.
    assert check_format("pve-vmid", "100\n") is None
    pattern = format_pattern("pve-vmid")
    assert pattern is not None
    assert not re.search(pattern.replace("$", r"\Z"), "100\n")


def test_property_string_errors_carry_the_parameter_path() -> None:
    assert check_format("pve-qm-ipconfig", "gw6=x,gw6=y", path="ipconfig0") == (
        "duplicate key in comma-separated list property: gw6\n"
    )
    assert check_format("pve-qm-watchdog", "model=x", path="watchdog") == (
        "format error\nwatchdog.model: value 'x' does not have a value in the enumeration 'i6300esb, ib700'\n"
    )


def test_split_list_follows_pve() -> None:
    assert split_list("a, b;c  d") == ["a", "b", "c", "d"]
    assert split_list("  ,a,") == ["a"]
    assert split_list("") == []
    assert split_list("a b\0c") == ["a b", "c"]  # NUL wins over every other separator


# --------------------------------------------------------------------------- format_pattern
def test_format_pattern_spells_out_the_simple_formats() -> None:
    assert format_pattern("pve-vmid") == "^(?:[1-9][0-9]{2,8})$"
    assert format_pattern("pve-configid") == "^(?:[a-zA-Z][a-zA-Z0-9_-]+)$"
    assert format_pattern("pve-storage-id") == r"^(?:[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9])$"
    for name in ("pve-node", "dns-name", "mac-addr", "ip", "CIDR", "pve-vmid-list", "email-opt", "pve-tag-list"):
        assert format_pattern(name) is not None, name
    # checks a single regex cannot express
    for name in ("pve-vlan-id-or-range", "pve-cpuset", "pve-dir-override", "pve-qm-ipconfig", "string-list"):
        assert format_pattern(name) is None, name


def test_every_pattern_is_anchored_and_compiles() -> None:
    names = sorted(KNOWN_FORMATS | {f"{n}-list" for n in KNOWN_FORMATS} | {f"{n}-opt" for n in KNOWN_FORMATS})
    patterns = [p for p in map(format_pattern, names) if p is not None]
    assert len(patterns) > 100
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        re.compile(pattern)


PATTERN_CASES = [(name, value, expected) for name, value, expected in CASES if format_pattern(name) is not None]


@pytest.mark.parametrize(("name", "value", "expected"), PATTERN_CASES, ids=[f"{c[0]}={c[1]!r}" for c in PATTERN_CASES])
def test_format_pattern_agrees_with_check_format(name: str, value: Any, expected: str | None) -> None:
    pattern = format_pattern(name)
    assert pattern is not None
    assert bool(re.search(pattern, str(value))) is (expected is None)


def _node_matches(node: str, pairs: list[tuple[str, str]]) -> list[list[bool]]:
    """[matches without flags, matches with the u flag] for each (ECMA pattern, text), run by node."""
    script = (
        "const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(pairs.map(([p, s]) => ["
        "new RegExp(p).test(s), new RegExp(p, 'u').test(s)])));"
    )
    run = subprocess.run([node, "-e", script], input=json.dumps(pairs), capture_output=True, text=True, check=True)
    result: list[list[bool]] = json.loads(run.stdout)
    return result


def test_format_patterns_are_ecma_262_and_agree_in_node(require_tool: Callable[[str], str]) -> None:
    node = require_tool("node")
    pairs = [(str(format_pattern(name)), str(value)) for name, value, _ in PATTERN_CASES]
    results = _node_matches(node, pairs)
    for (name, value, expected), (plain, unicode) in zip(PATTERN_CASES, results, strict=True):
        assert plain is unicode is (expected is None), (name, value)


# --------------------------------------------------------------------------- apidoc coverage
@pytest.mark.shared
def test_every_named_format_in_apidoc_is_known_or_explicitly_unchecked(
    api_schemas: list[tuple[str, str, Mapping[str, Any]]],
) -> None:
    named = {node["format"] for _, _, node in api_schemas if isinstance(node.get("format"), str)}
    missing = sorted(n for n in named if not is_known_format(n) and n not in UNCHECKED_FORMATS)
    assert not missing, f"new PVE formats: add a checker or list them in UNCHECKED_FORMATS: {missing}"
    assert len(named) >= 120  # PVE 9.1 has 122; a sudden drop means the walk above broke
    known = {n for n in named if is_known_format(n)}
    assert len(known) >= 100
    stale = sorted(UNCHECKED_FORMATS - named - {"pve-priv", "pve-sdn-bgp-rt"})
    assert not stale, f"UNCHECKED_FORMATS lists names apidoc.json no longer uses: {stale}"


@pytest.mark.shared
def test_property_string_typetexts_match_apidoc(api_schemas: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    seen: dict[str, set[str]] = {}
    for _, _, node in api_schemas:
        if isinstance(node.get("format"), str) and isinstance(node.get("typetext"), str):
            seen.setdefault(node["format"], set()).add(node["typetext"])
    for name, typetext in PROPERTY_STRING_TYPETEXTS.items():
        assert seen.get(name) == {typetext}, name
    # every named format whose typetext is a property string is registered (startup order has its own parser)
    property_strings = {n for n, texts in seen.items() if any(schema_from_typetext(t) for t in texts)}
    assert property_strings - set(PROPERTY_STRING_TYPETEXTS) == {"pve-startup-order"}


# --------------------------------------------------------------------------- Perl regex -> ECMA
@pytest.mark.parametrize(
    ("perl", "ecma"),
    [
        (r"(?^i:[a-z0-9_][a-z0-9_\-\+\.]*)", r"^(?:[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*)$"),
        (r"[A-Za-z0-9\-_\s]{,16}", r"^[A-Za-z0-9\-_\s]{0,16}$"),
        (r"(?^:(?:\w+=[^\x00-\x08])(?:\0\w+=x)*)", r"^(?:(?:\w+=[^\x00-\x08])(?:\x00\w+=x)*)$"),
        (r"(?^:[^\s:/]+)\@(?^:x)", r"^(?:[^\s:/]+)@(?:x)$"),
        (r"(?^:^((?>[+-]?[\w]+,?)+)$)", r"^(?:^((?:[+\-]?[\w]+,?)+)$)$"),
        (r"(?^i:ab)c", r"^(?:[aA][bB])c$"),
        (r"(?^i:[\(\)-_])", r"^(?:[()-_a-z])$"),  # the range ')'-'_' holds A-Z, so /i adds a-z
        (r"a++b*+c{2}+", r"^a+b*c{2}$"),
        (r"[[:alnum:]]+", r"^[a-zA-Z0-9]+$"),
        (r"x{a}", r"^x\{a\}$"),
        # PVE pastes ^ and $ around the text: a top-level | leaves each alternative half-anchored
        (r"/dev/parport\d+|/dev/usb/lp\d+", r"^/dev/parport\d+|/dev/usb/lp\d+$"),
    ],
)
def test_pve_pattern_to_ecma(perl: str, ecma: str) -> None:
    assert pve_pattern_to_ecma(perl) == ecma


def test_top_level_alternatives_stay_half_anchored_as_in_pve() -> None:
    pattern = pve_pattern_to_ecma(r"/dev/parport\d+|/dev/usb/lp\d+")
    assert re.search(pattern, "junk/dev/usb/lp1")  # PVE accepts this too (m/^$pattern$/)
    assert not re.search(pattern, "/dev/usb/lp1junk")
    assert not re.search(pattern, "junk/dev/parport0")


# fmt: off
PROBES = [
    "", " ", "a", "A", "Z", "abc", "ABC", "aB-1", "a_b", "0", "7", "100", "0755", "0x0123456789abcdef",
    "100-1", "99-1", "10/minute", "vmbr0", "ide0", "sata1", "scsi10", "q35", "pc-q35-8.1+pve0", "virt-9.0",
    "pc-i440fx-10.0", "now", "2024-01-01", "2024-01-01T10:00:00", "2024-01-01 10:00", "/dev/ttyS0", "socket",
    "/dev/parport0", "/dev/usb/lp1", "discard;noatime", "nodev;", "1;2;3", "1-5;7", "tag1;tag2", "Tag;X",
    "tag:ff00ff", "Tag:FF00FF:000000", "root@pam", "root@pam!tok", "user@Realm.x", "0000:00:1f.2", "00:1f.2",
    "mapping-1", "1234:5678", "0x1234:0x5678", "1-2.3", "spice", "SPICE", "Spice", "https://x", "http://y",
    "ftp://z", "acl;entry", "none", "key=val", "a=b, c=d", "net0=1,net1=2", "BC:24:11:00:00:01", "foo bar",
    "ceph.node1", "mon.a-b", "osd", "4M", "10G", "+5.5G", "docker.io/library/debian:latest", "debian:12",
    "(x)", "A_b-c", "a.b+c", "pve1c-0123456789", " pve2b-0123456789 ", "!=", "00:00", "AA:" * 31 + "AA",
    "/var/tmp/pveupload-abc", "12345678-1234-1234-1234-123456789abc", "1", "login", "-", "=", "é", "x\ty",
]
# fmt: on


@pytest.mark.shared
def test_translated_apidoc_patterns_match_what_perl_matches(
    api_schemas: list[tuple[str, str, Mapping[str, Any]]], require_tool: Callable[[str], str]
) -> None:
    """Run every pattern of apidoc.json through Perl (as PVE applies it) and through node (as a
    JSON Schema validator would apply the translation) on the same probes."""
    perl, node = require_tool("perl"), require_tool("node")
    patterns = sorted({n["pattern"] for _, _, n in api_schemas if isinstance(n.get("pattern"), str)})
    assert len(patterns) > 50
    texts = [t for t in PROBES if t.isascii()]  # ECMA \w/\d are ASCII-only, Perl's are not
    script = (
        "use JSON::PP; local $/; my $in = decode_json(<STDIN>);"
        "print encode_json([map { my $p = $_; [map { $_ =~ m/^$p$/ ? JSON::PP::true : JSON::PP::false }"
        " @{$in->{texts}}] } @{$in->{patterns}}]);"
    )
    run = subprocess.run(
        [perl, "-e", script],
        input=json.dumps({"patterns": patterns, "texts": texts}),
        capture_output=True,
        text=True,
        check=True,
    )
    expected: list[list[bool]] = json.loads(run.stdout)
    pairs = [(pve_pattern_to_ecma(p), t) for p in patterns for t in texts]
    got = iter(_node_matches(node, pairs))
    mismatches = []
    for pattern, row in zip(patterns, expected, strict=True):
        for text, perl_says in zip(texts, row, strict=True):
            plain, unicode = next(got)
            if not plain == unicode == perl_says:
                mismatches.append((pattern, text, perl_says, plain, unicode))
    assert not mismatches
    # the probes must exercise the patterns, not only fail them
    assert sum(map(sum, expected)) > 100


@pytest.mark.shared
def test_translation_compiles_in_python_for_every_apidoc_pattern(
    api_schemas: list[tuple[str, str, Mapping[str, Any]]],
) -> None:
    patterns = {n["pattern"] for _, _, n in api_schemas if isinstance(n.get("pattern"), str)}
    for pattern in patterns:
        translated = pve_pattern_to_ecma(pattern)
        re.compile(translated)
        for perl_only in ("(?^", "(?>", "{,", "\\@", "\\_", "\\0"):
            assert perl_only not in translated, (pattern, translated)


def test_modules_import_without_reading_files() -> None:
    """Importing the helpers must not read apidoc.json or anything else (servers import them early)."""
    code = (
        "import builtins, io, pathlib\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError(f'file access at import: {args!r}')\n"
        "builtins.open = io.open = refuse\n"
        "pathlib.Path.read_text = pathlib.Path.read_bytes = refuse\n"
        "import pvemcp.dialect.formats, pvemcp.dialect.propstring\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
