"""PVE's named formats: the validators PVE runs, with PVE's own messages, and JSON Schema regexes.

A PVE parameter can carry ``format: "<name>"``; PVE then runs a Perl validator registered under that
name (``PVE::JSONSchema::register_format`` in pve-common, qemu-server, pve-storage, ...). A rejected
value yields ``invalid format - <validator message>`` in the 400 envelope, message *including* its
trailing newline. Checking the same rules before a request leaves the server lets a tool answer
with PVE's own words without a round trip, and lets the simulator answer as PVE would.

Three kinds of names appear in apidoc.json:

* names with a checker here (``KNOWN_FORMATS``), also reached through PVE's generic ``<name>-list``
  (split on ``,``/``;``/whitespace, every element checked) and ``<name>-opt`` (empty allowed) suffixes;
* named *property strings* (``PROPERTY_STRING_TYPETEXTS``), checked through the property-string codec
  with a schema derived from their typetext;
* names accepted unchecked (``UNCHECKED_FORMATS``): their validators need state we do not have (time
  zones, privilege lists, firewall service names) or are too involved to mirror faithfully. We must
  never reject what we cannot check, so unknown names are accepted too.

Checks use Python ``re`` with Perl's semantics where they matter: ``$`` also matches before a final
newline, ``\\d``/``\\w`` are Unicode-aware. ``format_pattern`` gives ECMA-262 regexes for JSON Schema
``pattern``; those are ASCII-only for ``\\d``/``\\w`` and reject a trailing newline, i.e. they are never
looser than PVE on ordinary input.

Messages follow the PVE sources (pve-common ``JSONSchema.pm``, ``pve-storage`` ``Plugin.pm``,
``qemu-server``, ``pve-container``, ``pve-access-control``, ``pve-network``, ``pve-ha-manager``,
``pve-guest-common``, ``pve-manager``); the few written from memory are marked ``# unverified``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "KNOWN_FORMATS",
    "PROPERTY_STRING_TYPETEXTS",
    "UNCHECKED_FORMATS",
    "check_format",
    "format_pattern",
    "is_known_format",
    "perl_number",
    "pve_pattern_to_ecma",
    "split_list",
]

Check = Callable[[str], str | None]
"""A validator: the text of a value in, ``None`` (valid) or PVE's message (with ``\\n``) out."""


# --------------------------------------------------------------------------- regex building blocks
# IP grammar of RFC 3986 (IPv4address / IPv6address), written the way pve-common's
# PVE::Tools $IPV4RE / $IPV6RE spell it, so both accept exactly the same texts.
_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
_IPV4 = rf"(?:(?:{_OCTET}\.){{3}}{_OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:{_IPV4}|{_H16}:{_H16})"


def _ipv6_grammar() -> str:
    """The nine alternatives of RFC 3986 ``IPv6address``, one per position of ``::``."""
    alternatives = [rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1)):
        head = f"(?:(?:{_H16}:){{0,{before}}}{_H16})?" if before else f"(?:{_H16})?"
        alternatives.append(rf"{head}::(?:{_H16}:){{{after}}}{_LS32}")
    alternatives.append(rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}")
    alternatives.append(rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}")
    alternatives.append(rf"(?:(?:{_H16}:){{0,6}}{_H16})?::")
    return "(?:" + "|".join(f"(?:{a})" for a in alternatives) + ")"


_IPV6 = _ipv6_grammar()
_IP = f"(?:{_IPV4}|{_IPV6})"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DNS = rf"(?:(?:{_LABEL}\.)*{_LABEL})"
_STORAGE_ID = r"[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]"
_REALM = r"[A-Za-z][A-Za-z0-9.\-_]+"
_IFACE = r"[a-zA-Z][a-zA-Z0-9_]{1,20}(?:[:.][0-9]+)?"
_EMAIL_USER = r"[\w+\-~]+(?:\.[\w+\-~]+)*"
_EMAIL = rf"{_EMAIL_USER}@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*"
# ECMA-262 has no Unicode-aware \w without the u flag; PVE's Perl \w is Unicode-aware. The ECMA
# pattern uses the ASCII class (stricter), the Python check the Unicode one (as PVE).
_EMAIL_ECMA_USER = r"[A-Za-z0-9_+\-~]+(?:\.[A-Za-z0-9_+\-~]+)*"
_EMAIL_ECMA = rf"{_EMAIL_ECMA_USER}@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*"
_CIDR4_PREFIX = r"0*(?:[89]|[12][0-9]|3[0-2])"
_CIDR6_PREFIX = r"0*(?:[89]|[1-9][0-9]|1[01][0-9]|12[0-8])"
_IPV4_MASKS: Final = tuple(
    ".".join(str((((1 << 32) - 1) ^ ((1 << (32 - bits)) - 1)) >> shift & 255) for shift in (24, 16, 8, 0))
    for bits in range(33)
)
_CONTENT_TYPES: Final = ("backup", "images", "import", "iso", "none", "rootdir", "snippets", "vztmpl")
_HOTPLUG: Final = ("cloudinit", "cpu", "disk", "memory", "network", "usb")
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_BOOT_DISK = r"(?:ide[0-3]|sata[0-5]|scsi(?:[0-9]|[12][0-9]|30)|virtio(?:[0-9]|1[0-5])|efidisk0|tpmstate0)"
_SEP = r"[,;\s]"
_SDN_ID = r"[a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9]"


@functools.lru_cache(maxsize=256)
def _rx(pattern: str) -> re.Pattern[str]:
    """Compile once, on first use: keeps importing this module cheap."""
    return re.compile(pattern)


def _matches(pattern: str, text: str) -> bool:
    """Perl's ``$text =~ m/^...$/``: ``re.match`` with ``$`` behaves the same (final newline allowed)."""
    return _rx(pattern).match(text) is not None


def perl_split(separator: str, text: str) -> list[str]:
    """Perl's ``split(/sep/, $text)``: like ``re.split`` but trailing empty fields are dropped."""
    parts = _rx(separator).split(text)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def split_list(text: str) -> list[str]:
    """PVE's ``split_list``: NUL-separated if the text has a NUL, else on ``,``, ``;`` and whitespace."""
    if "\0" in text:
        return perl_split("\0", text)
    return perl_split(r"\s+", re.sub(r"^\s+", "", re.sub(r"[,;]", " ", text)))


def perl_number(value: float) -> str:
    """How Perl prints a number: integral values without a fraction, others like ``repr``."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def perl_true(value: object) -> bool:
    """Perl truthiness of a value PVE holds as text or number (``optional: 1``, ``all => "0"``): ``undef``,
    ``0``, ``"0"`` and ``""`` are false, anything else true."""
    return value not in (None, 0, "0", "", False)


def _perl_false(text: str) -> bool:
    """Perl treats exactly ``""`` and ``"0"`` as false strings; several validators test ``!$value``."""
    return text in ("", "0")


# --------------------------------------------------------------------------- the checkers
def _regex(body: str, message: str | Callable[[str], str]) -> Check:
    """A checker that is one anchored regex and one message (``{v}`` stands for the value)."""
    pattern = f"^(?:{body})$"

    def check(value: str) -> str | None:
        if _matches(pattern, value):
            return None
        return message(value) if callable(message) else message.format(v=value)

    return check


def _cidr(version: int) -> Check:
    """CIDRv4/CIDRv6: an address plus a prefix length of 8..32 (or 8..128), numerically compared."""
    address, limit = (_IPV4, 32) if version == 4 else (_IPV6, 128)
    pattern = rf"^(?:{address})(?:/([0-9]+))$"

    def check(value: str) -> str | None:
        match = _rx(pattern).match(value)
        if match and 7 < int(match[1]) <= limit:
            return None
        return f"value does not look like a valid IPv{version} CIDR network\n"

    return check


_CIDR4, _CIDR6 = _cidr(4), _cidr(6)


def _check_cidr(value: str) -> str | None:
    if _CIDR4(value) is None or _CIDR6(value) is None:
        return None
    return "value does not look like a valid CIDR network\n"


def _check_ip_config(version: int) -> Check:
    """LXC ``ip``/``ip6``: a CIDR or one of the keywords the container setup understands."""
    keywords = ("dhcp", "manual") if version == 4 else ("auto", "dhcp", "manual")
    cidr = _CIDR4 if version == 4 else _CIDR6

    def check(value: str) -> str | None:
        if _matches(f"^(?:{'|'.join(keywords)})$", value) or cidr(value) is None:
            return None
        return f"value does not look like a valid ipv{version} network configuration\n"

    return check


def _check_ipv4mask(value: str) -> str | None:
    return None if value in _IPV4_MASKS else "value does not look like a valid IP netmask\n"


def _check_vlan_range(value: str) -> str | None:
    """pve-vlan-id-or-range: ``tag`` or ``start-end`` with 2 <= tag <= 4094 and start < end."""
    match = _rx(r"^(\d+)(?:-(\d+))?$").match(value)
    if match is None:
        return f"invalid VLAN configuration '{value}'\n"
    start, end = match[1], match[2]
    if not 2 <= int(start) <= 4094:
        return f"invalid VLAN tag '{start}'\n"
    if end is not None and not _perl_false(end):  # Perl: `if ($end)`, so "5-0" passes
        if not 2 <= int(end) <= 4094:
            return f"invalid VLAN tag '{end}'\n"
        if int(start) >= int(end):
            return f"VLAN range must go from lower to higher tag '{value}'\n"
    return None


def _check_userid(value: str) -> str | None:
    """pve-userid: ``name@realm``, 3 to 64 characters (length checked first, as PVE does)."""
    name = "" if _perl_false(value) else value
    if len(name) < 3:
        return f"user name '{name}' is too short\n"
    if len(name) > 64:
        return f"user name '{name}' is too long ({len(name)} > 64)\n"
    if _matches(rf"^[^\s:/]+@{_REALM}$", name):
        return None
    return f"value '{name}' does not look like a valid user name\n"


def _check_poolid(value: str) -> str | None:
    """pve-poolid: nested pools (PVE >= 8.1) allow up to three ``/``-separated levels."""
    # unverified: the nesting rule and its message are written from memory of pve-access-control 8.1.
    if len(perl_split("/", value)) > 3:
        return f"pool name '{value}' nested too deeply (max levels = 3)\n"
    if _matches(r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$", value):
        return None
    return f"pool name '{value}' contains invalid characters\n"


def _check_startup_order(value: str) -> str | None:
    """pve-startup-order: ``[order=]N,up=N,down=N`` parsed by hand (not a property string in PVE)."""
    failure = "unable to parse startup options\n"
    if _perl_false(value):
        return failure
    for part in perl_split(",", value):
        if _matches(r"^\s*$", part):
            continue
        if not (_matches(r"^(?:order=)?\d+$", part) or _matches(r"^up=\d+$", part) or _matches(r"^down=\d+$", part)):
            return failure
    return None


def _check_hotplug(value: str) -> str | None:
    """pve-hotplug-features: ``0``, ``1`` (the default set) or a list of feature names."""
    if value in ("0", "1"):
        return None
    for feature in split_list(value):
        if feature not in _HOTPLUG:
            return f"invalid hotplug feature '{feature}'\n"
    return None


def _check_cpuset(value: str) -> str | None:
    """pve-cpuset: ``0,5,8-11``; a range must not run backwards."""
    for part in perl_split(",", value):
        match = _rx(r"^\s*(\d+)(?:-(\d+))?\s*$").match(part)
        if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
            return "unable to parse cpuset option\n"
    return None


def _check_lxc_mp(value: str) -> str | None:
    """pve-lxc-mp-string: no ``/./``, ``/../``, trailing ``/.``/``/..``, or leading ``../``."""
    if re.search(r"/\.\.?/", value) or re.search(r"/\.\.?$", value) or re.search(r"^\.\./", value):
        return f"{value} contains illegal character sequences\n"
    return None


def _check_lxc_dev(value: str) -> str | None:
    """pve-lxc-dev-string: a path below ``/dev/`` without ``.``/``..`` components."""
    if re.search(r"/\.\.?(?:/|$)", value) or not value.startswith("/dev/"):
        return f"{value} is not a valid device path\n"
    return None


def _check_ll_iface(value: str) -> str | None:
    """lxc-ip-with-ll-iface: an IP, or a link-local ``fe80:...%iface``."""
    match = _rx(r"^(fe80:[^%]+)%(.*)$").match(value)
    if match and _matches(f"^{_IP}$", match[1]) and _matches(f"^{_IFACE}$", match[2]):
        return None
    return None if _matches(f"^{_IP}$", value) else "value does not look like a valid IP address\n"


def _check_replication_id(value: str) -> str | None:
    """pve-replication-job-id: ``<guest>-<job>`` with a guest ID of at least 100."""
    message = f"invalid replication job id '{value}'"
    match = _rx(r"^(\d+)-(\d+)$").match(value)
    if match is None:
        return message + "\n"
    if int(match[1]) < 100:
        return message + " (guest IDs < 100 are reseved)\n"  # sic, PVE's spelling
    return None


def _check_dir_override(value: str) -> str | None:
    """pve-dir-override: ``<content>=<relative path>``; path without ``..``, not ending in ``.``."""
    failure = f"invalid override '{value}'\n"
    match = _rx(r"^([a-z]+)=(.*)$").match(value)
    # PVE's regex [^.]*(?:\.?[^.]+)+ in closed form (it backtracks exponentially in Python):
    if match is None or not match[2] or ".." in match[2] or match[2].endswith("."):
        return failure
    content = _CHECKS["pve-storage-content"](match[1])
    if content is not None:
        return content  # verify_content dies with its own message first
    path = match[2]
    if len(path) < 1023 and not any(len(part) >= 255 for part in path.split("/")):
        return None
    return failure


def _check_portal(value: str) -> str | None:
    """pve-storage-portal-dns: PVE::Tools::parse_host_and_port (IPv6 in brackets, or ``addr.port``)."""
    host = r"(?:[^\W_]|[-.])+"
    if (
        _matches(rf"^(?:{_IPV4}|{host})(?::\d+)?$", value)
        or _matches(rf"^\[(?:{_IPV6}|{_IPV4}|{host})\](?::\d+)?$", value)
        or _matches(rf"^{_IPV6}(?:\.\d+)?$", value)
    ):
        return None
    return "value does not look like a valid portal address\n"


def _check_ip_or_cidr(value: str) -> str | None:
    """IPorCIDR (pve-firewall). PVE additionally asks Net::IP, which rejects host bits in a network
    and out-of-range prefixes; that part is not mirrored (we accept what we cannot check)."""
    if _matches(rf"^(?:{_IPV6}|{_IPV4})(?:/\d+)?$", value):
        return None
    return "value does not look like a valid IP address or CIDR network\n"


_FW_ALIAS = r"(?:(?:dc|guest)/)?[A-Za-z][A-Za-z0-9\-_]+"  # unverified: scoped-alias prefix


def _check_ip_or_cidr_or_alias(value: str) -> str | None:
    return None if _matches(f"^{_FW_ALIAS}$", value) else _check_ip_or_cidr(value)


def _idpair(check_id: Check) -> Check:
    """storage-pair / bridge-pair element: ``1`` (identity), ``target``, or ``source:target``.

    PVE wraps the inner message twice (parse_idmap, then verify_idpair), each adding a newline.
    """

    def check(entry: str) -> str | None:
        if _perl_false(entry) or entry == "1":
            return None
        match = _rx(r"^([^:]+):([^:]+)$").match(entry)
        for part in (match[1], match[2]) if match else (entry,):
            inner = check_id(part)
            if inner is not None:
                return f"entry '{entry}' contains invalid ID - {inner}\n\n"
        return None

    return check


def _sdn_id(kind: str, body: str, max_length: int | None) -> Check:
    """pve-network object IDs: a character rule, then (for some) a length limit."""

    def check(value: str) -> str | None:
        if not _matches(f"^{body}$", value):
            return f"{kind} ID '{value}' contains illegal characters\n"
        if max_length is not None and len(value) > max_length:
            return f"{kind} ID '{value}' can't be more length than {max_length} characters\n"
        return None

    return check


def _any(*checks: Check, message: str) -> Check:
    """Valid if any of the checks accepts; PVE's combined validators print their own message."""

    def check(value: str) -> str | None:
        return None if any(c(value) is None for c in checks) else message.format(v=value)

    return check


@dataclass(frozen=True)
class _Format:
    """A registered base format: its checker, its ECMA regex body, and the body to use per list element."""

    check: Check
    body: str | None = None
    # Body of one element inside a ``-list`` pattern; None: no list pattern. PVE splits first, so the
    # element body must not match separators (``,``, ``;``, whitespace) or the list regex would be looser.
    list_body: str | None = None


def _plain(body: str, message: str | Callable[[str], str], *, list_safe: bool = True) -> _Format:
    """A format that is exactly one regex, usable as is in JSON Schema and inside lists."""
    return _Format(_regex(body, message), body, body if list_safe else None)


_ip = _regex(_IP, "value does not look like a valid IP address\n")
_dns = _regex(_DNS, "value does not look like a valid DNS name\n")
_storage_id = _regex(_STORAGE_ID, "storage ID '{v}' contains illegal characters\n")
_bridge_id = _regex(r"[-_.\w]+", "invalid bridge ID '{v}'\n")
_volume_id = _regex(rf"{_STORAGE_ID}:.+", "unable to parse volume ID '{v}'\n")
_email = _regex(_EMAIL, "value does not look like a valid email address\n")


def _check_volume_or_path(value: str) -> str | None:
    return None if value.startswith("/") else _volume_id(value)


def _check_volume_or_qm_path(value: str) -> str | None:
    return None if value in ("none", "cdrom") else _check_volume_or_path(value)


_VOLUME_ECMA = rf"{_STORAGE_ID}:.+"
_CIDR_ECMA = rf"(?:{_IPV4}/{_CIDR4_PREFIX}|{_IPV6}/{_CIDR6_PREFIX})"
_PAIR_ECMA = "(?:0|1|{id}|{id}:{id})"
_NO_DOT_COMPONENTS = r"(?![\s\S]*/\.\.?(?:/|$))"

_FORMATS: Final[dict[str, _Format]] = {
    # pve-common JSONSchema.pm
    "string": _Format(lambda _value: None),
    "urlencoded": _plain(r"[-%a-zA-Z0-9_.!~*'()]*", "invalid urlencoded string: {v}\n"),
    "pve-configid": _plain(r"[a-zA-Z][a-zA-Z0-9_-]+", "invalid configuration ID '{v}'\n"),
    "pve-storage-id": _Format(_storage_id, _STORAGE_ID, _STORAGE_ID),
    "pve-bridge-id": _Format(_bridge_id, r"[-_.A-Za-z0-9]+", r"[-_.A-Za-z0-9]+"),
    "pve-vmid": _plain(r"[1-9][0-9]{2,8}", "value does not look like a valid VM ID\n"),
    "pve-node": _plain(_LABEL, "value does not look like a valid node name\n"),
    "storage-pair": _Format(_idpair(_storage_id), None, _PAIR_ECMA.format(id=_STORAGE_ID)),
    "bridge-pair": _Format(_idpair(_bridge_id), None, _PAIR_ECMA.format(id="[-_.A-Za-z0-9]+")),
    "mac-addr": _plain(
        r"[a-fA-F0-9][02468aceACE](?::[a-fA-F0-9]{2}){5}", "value does not look like a valid unicast MAC address\n"
    ),
    "ipv4": _plain(_IPV4, "value does not look like a valid IPv4 address\n"),
    "ipv6": _plain(_IPV6, "value does not look like a valid IPv6 address\n"),
    "ip": _Format(_ip, _IP, _IP),
    "ldap-simple-attr": _plain(r"[a-zA-Z0-9]+", "value '{v}' does not look like a simple ldap attribute name\n"),
    "ipv4mask": _Format(_check_ipv4mask, "|".join(re.escape(m) for m in _IPV4_MASKS)),
    "CIDRv4": _Format(_CIDR4, rf"{_IPV4}/{_CIDR4_PREFIX}", rf"{_IPV4}/{_CIDR4_PREFIX}"),
    "CIDRv6": _Format(_CIDR6, rf"{_IPV6}/{_CIDR6_PREFIX}", rf"{_IPV6}/{_CIDR6_PREFIX}"),
    "CIDR": _Format(_check_cidr, _CIDR_ECMA, _CIDR_ECMA),
    "pve-ipv4-config": _Format(_check_ip_config(4), rf"dhcp|manual|{_IPV4}/{_CIDR4_PREFIX}"),
    "pve-ipv6-config": _Format(_check_ip_config(6), rf"auto|dhcp|manual|{_IPV6}/{_CIDR6_PREFIX}"),
    "email": _Format(_email, _EMAIL_ECMA, _EMAIL_ECMA),
    "email-or-username": _Format(
        _any(
            _email,
            _regex(_EMAIL_USER, ""),
            message="value does not look like a valid email address or user name\n",
        ),
        f"{_EMAIL_ECMA}|{_EMAIL_ECMA_USER}",
        f"{_EMAIL_ECMA}|{_EMAIL_ECMA_USER}",
    ),
    "dns-name": _Format(_dns, _DNS, _DNS),
    "pve-iface": _plain(_IFACE, "invalid network interface name '{v}'\n"),
    "pve-vlan-id-or-range": _Format(_check_vlan_range),
    "address": _Format(
        _any(_ip, _dns, message="value does not look like a valid address: {v}\n"), f"{_IP}|{_DNS}", f"{_IP}|{_DNS}"
    ),
    "disk-size": _plain(r"\d+(?:\.\d+)?[KMGT]?", "value does not look like a valid disk size: {v}\n"),
    "pve-startup-order": _Format(
        _check_startup_order,
        r"(?!0$)(?!$)(?:(?:order=)?[0-9]+|up=[0-9]+|down=[0-9]+|\s*)(?:,(?:(?:order=)?[0-9]+|up=[0-9]+|down=[0-9]+|\s*))*",
    ),
    "pve-tag": _plain(r"[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*", "invalid characters in tag\n"),
    "pve-task-status-type": _plain(
        r"[oO][kK]|[eE][rR][rR][oO][rR]|[wW][aA][rR][nN][iI][nN][gG]|[uU][nN][kK][nN][oO][wW][nN]",
        "invalid status '{v}'\n",
    ),
    # pve-access-control
    "pve-realm": _plain(_REALM, "value does not look like a valid realm\n"),
    "pve-userid": _Format(
        _check_userid,
        rf"(?=[\s\S]{{3,64}}$)[^\s:/]+@{_REALM}",
        rf"(?=[^,;\s]{{3,64}}(?:{_SEP}|$))[^\s:/,;]+@{_REALM}",
    ),
    "pve-tokenid": _Format(
        _regex(
            rf"[^\s:/]+@{_REALM}!{_REALM}",
            "value '{v}' does not look like a valid token ID\n",  # unverified message
        ),
        rf"[^\s:/]+@{_REALM}!{_REALM}",
        rf"[^\s:/,;]+@{_REALM}!{_REALM}",
    ),
    "pve-groupid": _plain(r"[A-Za-z0-9.\-_]+", "group name '{v}' contains invalid characters\n"),
    "pve-roleid": _plain(r"[A-Za-z0-9.\-_]+", "role name '{v}' contains invalid characters\n"),
    "pve-poolid": _Format(_check_poolid, r"[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}"),
    # pve-storage Plugin.pm
    "pve-storage-path": _Format(
        lambda v: None if _rx(r"^/[^;()]+").match(v) else "value does not look like a valid absolute path\n",
        r"/[^;()]+[\s\S]*",
    ),
    "pve-storage-server": _Format(
        _any(_ip, _dns, message="value does not look like a valid server name or IP address\n"), f"{_IP}|{_DNS}"
    ),
    "pve-storage-vgname": _plain(
        r"[a-zA-Z0-9][a-zA-Z0-9\-_.]*[a-zA-Z0-9]", "lvm name '{v}' contains illegal characters\n"
    ),
    "pve-storage-portal-dns": _Format(
        _check_portal,
        rf"(?:{_IPV4}|[a-zA-Z0-9.-]+)(?::[0-9]+)?|\[(?:{_IPV6}|{_IPV4}|[a-zA-Z0-9.-]+)\](?::[0-9]+)?|{_IPV6}(?:\.[0-9]+)?",
        rf"(?:{_IPV4}|[a-zA-Z0-9.-]+)(?::[0-9]+)?|\[(?:{_IPV6}|{_IPV4}|[a-zA-Z0-9.-]+)\](?::[0-9]+)?|{_IPV6}(?:\.[0-9]+)?",
    ),
    # 'none' is in the dir plugin's content list ("content none"); 'import' is accepted explicitly.
    "pve-storage-content": _plain("|".join(_CONTENT_TYPES), "invalid content type '{v}'\n"),
    "pve-storage-options": _plain(r"\S+", "invalid options '{v}'\n", list_safe=False),
    "pve-volume-id": _Format(_volume_id, _VOLUME_ECMA),
    "pve-dir-override": _Format(_check_dir_override),
    # qemu-server
    "pve-volume-id-or-absolute-path": _Format(_check_volume_or_path, rf"/[\s\S]*|{_VOLUME_ECMA}"),
    "pve-volume-id-or-qm-path": _Format(_check_volume_or_qm_path, rf"none|cdrom|/[\s\S]*|{_VOLUME_ECMA}"),
    "pve-qm-bootdisk": _plain(_BOOT_DISK, "invalid boot disk '{v}'\n"),
    "pve-hotplug-features": _Format(
        _check_hotplug,
        rf"0|1|{_SEP}*(?:(?:{'|'.join(_HOTPLUG)})(?:{_SEP}+(?:{'|'.join(_HOTPLUG)}))*{_SEP}*)?",
    ),
    "pve-cpuset": _Format(_check_cpuset),
    # pve-container
    "pve-lxc-mp-string": _Format(_check_lxc_mp, r"(?![\s\S]*/\.\.?/)(?![\s\S]*/\.\.?$)(?!\.\./)[\s\S]*"),
    "pve-lxc-dev-string": _Format(_check_lxc_dev, rf"{_NO_DOT_COMPONENTS}/dev/[\s\S]*"),
    "lxc-ip-with-ll-iface": _Format(
        _check_ll_iface, rf"(?=fe80:){_IPV6}%{_IFACE}|{_IP}", rf"(?=fe80:){_IPV6}%{_IFACE}|{_IP}"
    ),
    # pve-manager
    "pve-day-of-week": _plain("|".join(_DAYS), "invalid day '{v}'\n"),
    "graphite-path": _plain(_DNS, "value does not look like a valid graphite path\n"),  # unverified message
    "mac-prefix": _plain(
        r"[a-fA-F0-9][02468aceACE](?::[a-fA-F0-9]{2}){0,2}:?", "value is not a valid unicast MAC address prefix\n"
    ),
    # unverified messages (pve-manager NodeConfig.pm, from memory)
    "pve-acme-domain": _plain(
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*(?:\.[a-zA-Z0-9][a-zA-Z0-9_-]*)+",
        "value '{v}' does not look like a valid domain name!\n",
    ),
    "pve-acme-alias": _plain(
        r"[a-zA-Z0-9_][a-zA-Z0-9_-]*(?:\.[a-zA-Z0-9_][a-zA-Z0-9_-]*)+",
        "value '{v}' does not look like a valid alias name!\n",
    ),
    # pve-guest-common
    "pve-replication-job-id": _Format(_check_replication_id, r"0*[1-9][0-9]{2,}-[0-9]+"),
    # pve-ha-manager
    "pve-ha-resource-id": _Format(
        _regex(r"[a-z]+:\S+", "value does not look like a valid ha resource id\n"), r"[a-z]+:\S+", r"[a-z]+:[^\s,;]+"
    ),
    "pve-ha-resource-or-vm-id": _plain(
        r"[a-z]+:\S+|\d+", "value does not look like a valid ha resource id\n", list_safe=False
    ),
    # unverified message: PVE 9 rules use 'pve-ha-node(-list)'; the rule is that of 'pve-ha-group-node'.
    "pve-ha-node": _plain(rf"{_LABEL}(?::\d+)?", "value does not look like a valid ha node\n"),
    # pve-network (SDN)
    "pve-sdn-zone-id": _Format(_sdn_id("zone", _SDN_ID, 8), rf"(?![\s\S]{{9}}){_SDN_ID}"),
    "pve-sdn-vnet-id": _Format(_sdn_id("vnet", _SDN_ID, 8), rf"(?![\s\S]{{9}}){_SDN_ID}"),
    "pve-sdn-controller-id": _Format(
        _sdn_id("controller", r"[a-zA-Z][a-zA-Z0-9_-]*[a-zA-Z0-9]", 64),
        r"(?![\s\S]{65})[a-zA-Z][a-zA-Z0-9_-]*[a-zA-Z0-9]",
    ),
    "pve-sdn-ipam-id": _Format(
        _sdn_id("ipam", r"[a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9]", None), r"[a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9]"
    ),
    "pve-sdn-dns-id": _Format(
        _sdn_id("dns", r"[a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9]", None), r"[a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9]"
    ),
    # pve-firewall
    "IPorCIDR": _Format(_check_ip_or_cidr, rf"(?:{_IPV6}|{_IPV4})(?:/[0-9]+)?"),
    "IPorCIDRorAlias": _Format(_check_ip_or_cidr_or_alias, rf"{_FW_ALIAS}|(?:{_IPV6}|{_IPV4})(?:/[0-9]+)?"),
}
_CHECKS: Final[dict[str, Check]] = {name: fmt.check for name, fmt in _FORMATS.items()}

# Named formats that are property strings in PVE (a registered hash, not a function), with the
# typetext PVE prints for them; the codec derives a schema from it. Kept here because apidoc.json
# omits the typetext in places (return schemas), and tests compare each entry with apidoc.json.
PROPERTY_STRING_TYPETEXTS: Final[dict[str, str]] = {
    "backup-fleecing": "[[enabled=]<1|0>] [,storage=<storage ID>]",
    "backup-performance": "[max-workers=<integer>] [,pbs-entries-max=<integer>]",
    "prune-backups": (
        "[keep-all=<1|0>] [,keep-daily=<N>] [,keep-hourly=<N>] [,keep-last=<N>] [,keep-monthly=<N>]"
        " [,keep-weekly=<N>] [,keep-yearly=<N>]"
    ),
    "proxmox-remote": (
        "apitoken=<PVEAPIToken=user@realm!token=SECRET> ,host=<ADDRESS> [,fingerprint=<FINGERPRINT>] [,port=<PORT>]"
    ),
    "pve-qemu-sev-fmt": (
        "[type=]<sev-type> [,allow-smt=<1|0>] [,kernel-hashes=<1|0>] [,no-debug=<1|0>] [,no-key-sharing=<1|0>]"
    ),
    "pve-qemu-tdx-fmt": "[type=]<tdx-type> ,attestation=<1|0> [,vsock-cid=<integer>] [,vsock-port=<integer>]",
    "pve-qm-boot": "[[legacy=]<[acdn]{1,4}>] [,order=<device[;device...]>]",
    "pve-qm-cicustom": "[meta=<volume>] [,network=<volume>] [,user=<volume>] [,vendor=<volume>]",
    "pve-qm-hostpci": (
        "[[host=]<HOSTPCIID[;HOSTPCIID2...]>] [,device-id=<hex id>] [,driver=<vfio|keep>] [,legacy-igd=<1|0>]"
        " [,mapping=<mapping-id>] [,mdev=<string>] [,pcie=<1|0>] [,rombar=<1|0>] [,romfile=<string>]"
        " [,sub-device-id=<hex id>] [,sub-vendor-id=<hex id>] [,vendor-id=<hex id>] [,x-vga=<1|0>]"
    ),
    "pve-qm-ipconfig": "[gw=<GatewayIPv4>] [,gw6=<GatewayIPv6>] [,ip=<IPv4Format/CIDR>] [,ip6=<IPv6Format/CIDR>]",
    "pve-qm-rng": "[source=]</dev/urandom|/dev/random|/dev/hwrng> [,max_bytes=<integer>] [,period=<integer>]",
    "pve-qm-smbios1": (
        "[base64=<1|0>] [,family=<Base64 encoded string>] [,manufacturer=<Base64 encoded string>]"
        " [,product=<Base64 encoded string>] [,serial=<Base64 encoded string>] [,sku=<Base64 encoded string>]"
        " [,uuid=<UUID>] [,version=<Base64 encoded string>]"
    ),
    "pve-qm-watchdog": "[[model=]<i6300esb|ib700>] [,action=<enum>]",
    "pve-tfa-config": "type=<TFATYPE> [,digits=<COUNT>] [,id=<ID>] [,key=<KEY>] [,step=<SECONDS>] [,url=<URL>]",
    "pve-vm-cpu-conf": (
        "[[cputype=]<string>] [,flags=<+FLAG[;-FLAG...]>] [,guest-phys-bits=<integer>] [,hidden=<1|0>]"
        " [,hv-vendor-id=<vendor-id>] [,phys-bits=<8-64|host>] [,reported-model=<enum>]"
    ),
    "realm-sync-options": (
        "[enable-new=<1|0>] [,full=<1|0>] [,purge=<1|0>] [,remove-vanished=([acl];[properties];[entry])|none]"
        " [,scope=<users|groups|both>]"
    ),
}

# Accepted without a check, each for a reason:
UNCHECKED_FORMATS: Final[frozenset[str]] = frozenset(
    {
        "pve-calendar-event",  # systemd calendar-event grammar, parsed by Rust code in PVE
        "pve-command-batch",  # JSON array validated against an internal schema
        "pem-certificate",  # PEM parsing (OpenSSL)
        "pem-certificate-chain",
        "pem-string",
        "pve-ct-timezone",  # needs /usr/share/zoneinfo/zone.tab of the node
        "pve-fw-addr-spec",  # firewall address lists, IP sets and aliases
        "pve-fw-conntrack-helper",
        "pve-fw-dport-spec",  # service names from /etc/services
        "pve-fw-sport-spec",
        "pve-fw-icmp-type-spec",
        "pve-fw-protocol-spec",  # protocol names from /etc/protocols
        "pve-priv",  # the privilege list of the running version
        "pve-priv-list",
        "pve-sdn-bgp-rt",
        "pve-sdn-bgp-rt-list",
        "pve-sdn-fabric-id",  # Rust-side (proxmox-ve-rs) validation
        "pve-sdn-isis-net",
        "pve-sdn-subnet-id",  # "<zone>-<cidr with - for />", rules changed across versions
        "pve-sdn-dhcp-range",  # a property string without a published typetext
        "pve-storage-path-in-property-string",
        "pve-qm-ide",  # the ide drive property string; apidoc gives only '<volume>' as typetext
    }
)

KNOWN_FORMATS: Final[frozenset[str]] = frozenset(_FORMATS)


def _base(name: str) -> tuple[str, str]:
    """PVE's ``m/^(.*?)(?:-(list|opt))?$/``: the registered base name and the suffix kind."""
    for suffix in ("list", "opt"):
        if name.endswith(f"-{suffix}") and name[: -len(suffix) - 1] in _FORMATS:
            return name[: -len(suffix) - 1], suffix
    return name, "none"


def is_known_format(name: str) -> bool:
    """True if ``check_format`` really checks ``name`` (directly, as a list/opt, or as a property string)."""
    base, _ = _base(name)
    return base in _FORMATS or name in PROPERTY_STRING_TYPETEXTS


def _as_text(value: object) -> str | None:
    """The text PVE's Perl sees for a decoded JSON value; None where PVE would not call a validator."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return perl_number(value)
    if isinstance(value, str):
        return value
    return None


def check_format(name: str, value: object, *, path: str = "") -> str | None:
    """Check ``value`` against PVE's named format ``name``.

    Returns None if valid (or not checkable here), else the validator's message exactly as PVE
    prints it after ``invalid format - ``, trailing newline included. For property-string formats
    ``path`` is the parameter name PVE prefixes to sub-key errors (``ipconfig0.gw: ...``).
    """
    text = _as_text(value)
    if text is None:
        return None
    if name in PROPERTY_STRING_TYPETEXTS:
        from pvemcp.dialect import propstring  # lazy: propstring imports this module

        return propstring.check_named(name, text, path=path)
    base, kind = _base(name)
    fmt = _FORMATS.get(base)
    if fmt is None:
        return None
    if kind == "list":
        for element in split_list(text):
            message = fmt.check(element)
            if message is not None:
                return message
        return None
    if kind == "opt" and _perl_false(text):
        return None
    return fmt.check(text)


def format_pattern(name: str) -> str | None:
    """An anchored ECMA-262 regex equivalent to ``check_format(name, ...)``, or None if there is none.

    Never looser than PVE: where PVE's check needs more than a regex (numeric ranges, Net::IP), or
    its regex is Unicode-aware, the pattern is None or the stricter ASCII form.
    """
    base, kind = _base(name)
    fmt = _FORMATS.get(base)
    if fmt is None:
        return None
    if kind == "list":
        if fmt.list_body is None:
            return None
        element = f"(?:{fmt.list_body})"
        return f"^{_SEP}*(?:{element}(?:{_SEP}+{element})*{_SEP}*)?$"
    if fmt.body is None:
        return None
    if kind == "opt":
        return f"^(?:|0|{fmt.body})$"
    return f"^(?:{fmt.body})$"


# --------------------------------------------------------------------------- Perl regex -> ECMA-262
_ECMA_SYNTAX = set("^$\\.*+?()[]{}|/")
_CLASS_ESCAPES = set("dDwWsS")
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "lower": "a-z",
    "upper": "A-Z",
    "space": r"\s",
    "xdigit": "0-9A-Fa-f",
    "word": r"\w",
    "punct": r"!-\/:-@\[-`{-~",
}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "e": "\x1b", "a": "\x07", "0": "\0"}


def _class_char(code: int) -> str:
    """One character inside an ECMA class, escaped so it is valid with and without the u flag."""
    ch = chr(code)
    if ch in "\\]^-[":
        return "\\" + ch
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code > 0x7E:
        return f"\\u{code:04x}" if code <= 0xFFFF else ch
    return ch


def _fold_ranges(lo: int, hi: int) -> list[tuple[int, int]]:
    """The other-case ASCII letters of the range lo..hi, as ranges (Perl's /i inside a class)."""
    out: list[tuple[int, int]] = []
    for first, last, shift in ((ord("a"), ord("z"), -32), (ord("A"), ord("Z"), 32)):
        a, b = max(lo, first), min(hi, last)
        if a <= b:
            out.append((a + shift, b + shift))
    return out


class _Translator:
    """A single pass over a Perl regex, emitting ECMA-262 that also compiles in Python ``re``."""

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.i = 0
        self.out: list[str] = []
        self.caseless = [False]

    def run(self) -> str:
        while self.i < len(self.src):
            ch = self.src[self.i]
            if ch == "\\":
                self._escape()
            elif ch == "[":
                self._char_class()
            elif ch == "(":
                self._group_open()
            elif ch == ")":
                if len(self.caseless) > 1:
                    self.caseless.pop()
                self.out.append(")")
                self.i += 1
            elif ch == "{":
                self._brace()
            elif ch == "}" or ch == "]":
                self.out.append("\\" + ch)
                self.i += 1
            elif ch in "*+?":
                self.out.append(ch)
                self.i += 1
                self._drop_possessive()
            elif ch.isalpha() and ch.isascii() and self.caseless[-1]:
                self.out.append(f"[{ch.lower()}{ch.upper()}]")
                self.i += 1
            else:
                self.out.append(ch)
                self.i += 1
        return "".join(self.out)

    def _drop_possessive(self) -> None:
        """Perl's possessive ``a++`` has no ECMA form; the plain quantifier matches a superset."""
        if self.src.startswith("+", self.i):
            self.i += 1

    def _escape(self) -> None:
        nxt = self.src[self.i + 1 : self.i + 2]
        self.i += 2
        if nxt == "":
            self.out.append("\\\\")
        elif nxt in "dDwWsSbBnrtfv" or (nxt.isdigit() and nxt != "0"):
            self.out.append("\\" + nxt)
        elif nxt == "A":
            self.out.append("^")
        elif nxt in "zZ":
            self.out.append("$")
        elif nxt == "0":
            self.out.append("\\x00")
        elif nxt == "x":
            code, self.i = self._hex_code(self.i)
            self.out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        elif nxt in _ECMA_SYNTAX:
            self.out.append("\\" + nxt)
        elif nxt.isalpha() and self.caseless[-1]:
            self.out.append(f"[{nxt.lower()}{nxt.upper()}]")
        else:
            # Perl's identity escapes (\@, \-, \_, \:) are literals; ECMA's u mode forbids them.
            self.out.append(nxt)

    def _hex_code(self, i: int) -> tuple[int, int]:
        """The code point of ``\\xHH`` / ``\\x{HHHH}`` whose digits start at ``i``, and the index after."""
        if self.src.startswith("{", i):
            end = self.src.index("}", i)
            return int(self.src[i + 1 : end] or "0", 16), end + 1
        match = re.match(r"[0-9a-fA-F]{1,2}", self.src[i:])
        return (int(match[0], 16), i + len(match[0])) if match else (0, i)

    def _brace(self) -> None:
        match = re.match(r"\{(\d*)(,?)(\d*)\}", self.src[self.i :])
        if match and (match[1] or match[3]) and (match[2] or not match[3]):
            low = match[1] or "0"  # Perl >= 5.34 reads {,n} as {0,n}
            self.out.append("{" + low + match[2] + match[3] + "}")
            self.i += len(match[0])
            self._drop_possessive()
        else:
            self.out.append("\\{")
            self.i += 1

    def _group_open(self) -> None:
        src, i = self.src, self.i
        caseless = self.caseless[-1]
        if not src.startswith("(?", i):
            self.out.append("(")
            self.i += 1
            self.caseless.append(caseless)
            return
        flags = re.match(r"\(\?(\^?)([a-zA-Z]*)(?:-([a-zA-Z]*))?(:|\))", src[i:])
        if flags:
            on, off = flags[2], flags[3] or ""
            if flags[1] == "^":
                caseless = False
            if "i" in on:
                caseless = True
            if "i" in off:
                caseless = False
            self.i += len(flags[0])
            if flags[4] == ")":  # (?i) switches the rest of the enclosing group
                self.caseless[-1] = caseless
                return
            self.out.append("(?:")
            self.caseless.append(caseless)
            return
        if src.startswith("(?#", i):
            self.i = src.index(")", i) + 1
            return
        for perl, ecma in (
            ("(?>", "(?:"),
            ("(?P<", "(?<"),
            ("(?<=", "(?<="),
            ("(?<!", "(?<!"),
            ("(?=", "(?="),
            ("(?!", "(?!"),
        ):
            if src.startswith(perl, i):
                self.out.append(ecma)
                self.i += len(perl)
                self.caseless.append(caseless)
                return
        # named group (?<name>...) is the same in both dialects
        self.out.append("(")
        self.i += 1
        self.caseless.append(caseless)

    def _char_class(self) -> None:
        src = self.src
        i = self.i + 1
        negate = src.startswith("^", i)
        if negate:
            i += 1
        items: list[tuple[int, int] | str] = []  # ranges (lo, hi) or class escapes like "\\d"
        first = True
        while i < len(src) and (src[i] != "]" or first):
            first = False
            posix = re.match(r"\[:(\^?)(\w+):\]", src[i:])
            if posix and posix[2] in _POSIX_CLASSES and not posix[1]:
                items.append(_POSIX_CLASSES[posix[2]])
                i += len(posix[0])
                continue
            item, i = self._class_atom(i)
            if isinstance(item, int) and src.startswith("-", i) and i + 1 < len(src) and src[i + 1] != "]":
                upper, after = self._class_atom(i + 1)
                if isinstance(upper, int):
                    items.append((item, upper))
                    i = after
                    continue
            items.append((item, item) if isinstance(item, int) else item)
        self.i = i + 1
        parts: list[str] = []
        for it in items:
            if isinstance(it, str):
                parts.append(it)
                continue
            ranges = [it, *_fold_ranges(*it)] if self.caseless[-1] else [it]
            for lo, hi in ranges:
                parts.append(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}")
        self.out.append("[" + ("^" if negate else "") + "".join(parts) + "]")

    def _class_atom(self, i: int) -> tuple[int | str, int]:
        """One class member at ``i``: a code point, or a class escape kept as text."""
        src = self.src
        if src[i] != "\\":
            return ord(src[i]), i + 1
        nxt = src[i + 1 : i + 2]
        if nxt in _CLASS_ESCAPES:
            return "\\" + nxt, i + 2
        if nxt in _SIMPLE_ESCAPES:
            return ord(_SIMPLE_ESCAPES[nxt]), i + 2
        if nxt == "x":
            return self._hex_code(i + 2)
        return ord(nxt), i + 2


def pve_pattern_to_ecma(pattern: str) -> str:
    """Translate a ``pattern`` from PVE's schema (Perl syntax) into an anchored ECMA-262 regex.

    PVE applies a pattern as ``m/^$pattern$/``: the anchors are pasted around the text, not around a
    group, so with a top-level ``|`` only the first alternative is anchored at the start and only the
    last at the end (``/dev/parport\\d+|/dev/usb/lp\\d+`` accepts ``x/dev/usb/lp1``). The result keeps
    exactly that, ``^<translated>$``, so a JSON Schema validator (which searches, as Perl does)
    accepts what PVE accepts.

    Perl-only syntax is rewritten: ``(?^:``/``(?^i:`` flag groups (case-insensitivity spelled out as
    two-case letters and classes), atomic groups and possessive quantifiers (dropped: same whole-value
    matches in practice), ``{,n}``, ``\\0``, ``\\A``/``\\z``, POSIX classes, and identity escapes such
    as ``\\@`` or ``\\_`` that ECMA's u mode rejects. The result also compiles in Python ``re``.
    """
    return f"^{_Translator(pattern).run()}$"
