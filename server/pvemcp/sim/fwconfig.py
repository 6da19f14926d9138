"""Firewall configuration of the simulated cluster: ``cluster.fw`` rules and each guest's ``<vmid>.fw``.

Follows pve-firewall ``src/PVE/Firewall.pm``: a guest without a ``.fw`` file has empty options and no rules
(``load_vmfw_conf`` starts from an empty config and never checks that the guest exists); ``GET`` answers
carry a ``digest`` computed by ``copy_opject_with_digest`` / ``copy_list_with_digest`` (SHA-1 over the
sorted ``key:value\\n`` pairs); new rules go through ``verify_rule`` whose first problem is a 400 on the
offending parameter. Destroying a guest removes its ``.fw`` file, so a config is only valid for the very
guest object it was written for (a new guest reusing the VMID starts empty).

The seeded cluster lets SSH and the web UI in from the management network at cluster level, and gives
the public-facing guests (the web servers, the reverse proxy, the DNS server) their own rule sets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pvemcp.sim.errors import param_error
from pvemcp.sim.state import ClusterState, ConfigValue, Guest

Rule = dict[str, ConfigValue]

# $rule_properties of Firewall.pm that a rule keeps (pos and digest are request-only)
RULE_KEYS: tuple[str, ...] = (
    "type",
    "action",
    "macro",
    "iface",
    "source",
    "dest",
    "proto",
    "dport",
    "sport",
    "icmp-type",
    "log",
    "enable",
    "comment",
)
# $vm_option_properties
VM_OPTION_KEYS: frozenset[str] = frozenset(
    {
        "enable",
        "dhcp",
        "ipfilter",
        "log_level_in",
        "log_level_out",
        "macfilter",
        "ndp",
        "policy_in",
        "policy_out",
        "radv",
    }
)

# names of $pve_fw_macros and $pve_ipv6fw_macros; verify_rule accepts them case-insensitively
MACROS: tuple[str, ...] = (
    "Amanda",
    "Auth",
    "BGP",
    "BitTorrent",
    "BitTorrent32",
    "Ceph",
    "CVS",
    "Citrix",
    "DAAP",
    "DCC",
    "DHCPfwd",
    "DHCPv6",
    "DNS",
    "Distcc",
    "FTP",
    "Finger",
    "GNUnet",
    "GRE",
    "Git",
    "HKP",
    "HTTP",
    "HTTPS",
    "ICPV2",
    "ICQ",
    "IMAP",
    "IMAPS",
    "IPIP",
    "IPsec",
    "IPsecah",
    "IPsecnat",
    "IRC",
    "Jetdirect",
    "L2TP",
    "LDAP",
    "LDAPS",
    "MSNP",
    "MSSQL",
    "Mail",
    "MDNS",
    "Munin",
    "MySQL",
    "NNTP",
    "NNTPS",
    "NTP",
    "NeighborDiscovery",
    "OSPF",
    "OpenVPN",
    "PCA",
    "PMG",
    "POP3",
    "POP3S",
    "PPtP",
    "Ping",
    "PostgreSQL",
    "Printer",
    "RDP",
    "RIP",
    "RNDC",
    "Razor",
    "Rdate",
    "Rsync",
    "SANE",
    "SMB",
    "SMBswat",
    "SMTP",
    "SMTPS",
    "SNMP",
    "SPAMD",
    "SSH",
    "SVN",
    "SixXS",
    "SPICEproxy",
    "Squid",
    "Submission",
    "Syslog",
    "TFTP",
    "Telnet",
    "Telnets",
    "Time",
    "Trcrt",
    "VNC",
    "VNCL",
    "Web",
    "Webcache",
    "Webmin",
    "Whois",
)
_PREFERRED_MACRO = {m.lower(): m for m in MACROS}

# $PROTOCOLS_WITH_PORTS
_PORT_PROTOCOLS = frozenset({"udp", "17", "udplite", "136", "tcp", "6", "dccp", "33", "sctp", "132"})
# a Debian /etc/protocols subset (plus icmpv6, which get_etc_protocols adds); numbers are always valid
_PROTOCOLS = frozenset(
    {
        "ip",
        "icmp",
        "igmp",
        "ggp",
        "ipencap",
        "tcp",
        "egp",
        "udp",
        "dccp",
        "ipv6",
        "ipv6-route",
        "ipv6-frag",
        "gre",
        "esp",
        "ah",
        "ipv6-icmp",
        "icmpv6",
        "ipv6-nonxt",
        "ipv6-opts",
        "ospf",
        "pim",
        "vrrp",
        "l2tp",
        "sctp",
        "udplite",
        "mpls-in-ip",
    }
)
# a Debian /etc/services subset: the names get_etc_services resolves for ports
_SERVICES = frozenset(
    {
        "ftp",
        "ssh",
        "telnet",
        "smtp",
        "domain",
        "http",
        "pop3",
        "ntp",
        "imap",
        "snmp",
        "ldap",
        "https",
        "submission",
        "imaps",
        "pop3s",
        "rsync",
        "mysql",
        "postgresql",
        "ms-wbt-server",
        "openvpn",
        "syslog",
        "tftp",
    }
)
# $icmp_type_names and $icmpv6_type_names
ICMP_TYPES = frozenset(
    {
        "any",
        "echo-reply",
        "destination-unreachable",
        "network-unreachable",
        "host-unreachable",
        "protocol-unreachable",
        "port-unreachable",
        "fragmentation-needed",
        "source-route-failed",
        "network-unknown",
        "host-unknown",
        "network-prohibited",
        "host-prohibited",
        "communication-prohibited",
        "host-precedence-violation",
        "precedence-cutoff",
        "source-quench",
        "redirect",
        "network-redirect",
        "host-redirect",
        "echo-request",
        "router-advertisement",
        "router-solicitation",
        "time-exceeded",
        "ttl-zero-during-transit",
        "ttl-zero-during-reassembly",
        "parameter-problem",
        "ip-header-bad",
        "required-option-missing",
        "timestamp-request",
        "timestamp-reply",
        "address-mask-request",
        "address-mask-reply",
    }
)
ICMPV6_TYPES = frozenset(
    {
        "destination-unreachable",
        "no-route",
        "communication-prohibited",
        "beyond-scope",
        "address-unreachable",
        "port-unreachable",
        "failed-policy",
        "reject-route",
        "packet-too-big",
        "time-exceeded",
        "ttl-zero-during-transit",
        "ttl-zero-during-reassembly",
        "parameter-problem",
        "bad-header",
        "unknown-header-type",
        "unknown-option",
        "echo-request",
        "echo-reply",
        "router-solicitation",
        "router-advertisement",
        "neighbor-solicitation",
        "neighbour-solicitation",
        "neighbor-advertisement",
        "neighbour-advertisement",
        "redirect",
    }
)
_ICMP_PROTOCOLS = frozenset({"icmp", "icmpv6", "ipv6-icmp"})
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_]+$")  # $ip_alias_pattern, $ipset_name_pattern, group names
_DIRECTIONS = {"vm": ("in", "out", "group"), "ct": ("in", "out", "group"), "cluster": ("in", "out", "forward", "group")}


def object_digest(obj: Mapping[str, ConfigValue]) -> str:
    """``copy_opject_with_digest``'s SHA-1: every defined ``key:value\\n`` in key order."""
    sha = hashlib.sha1()
    for key in sorted(obj):
        sha.update(f"{key}:{obj[key]}\n".encode())
    return sha.hexdigest()


def list_digest(rules: Iterable[Mapping[str, ConfigValue]]) -> str:
    """``copy_list_with_digest``'s SHA-1 over all rules in order."""
    sha = hashlib.sha1()
    for rule in rules:
        for key in sorted(rule):
            sha.update(f"{key}:{rule[key]}\n".encode())
    return sha.hexdigest()


@dataclass
class FirewallConf:
    """One ``.fw`` file: ``[OPTIONS]`` and ``[RULES]`` (aliases and IP sets are not modelled)."""

    options: dict[str, ConfigValue] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    owner: Guest | None = None


class FirewallStore:
    """``/etc/pve/firewall``: the cluster rules and the guests' configs."""

    def __init__(self) -> None:
        self.cluster_rules: list[Rule] = []
        self.guests: dict[int, FirewallConf] = {}

    def guest_conf(self, state: ClusterState, vmid: int) -> FirewallConf:
        """``load_vmfw_conf``: the guest's config, or an empty one (not stored until it is saved)."""
        owner = state.guests.get(vmid)
        conf = self.guests.get(vmid)
        if conf is None or conf.owner is not owner:
            return FirewallConf(owner=owner)
        return conf

    def save_guest_conf(self, vmid: int, conf: FirewallConf) -> None:
        """``save_vmfw_conf``."""
        self.guests[vmid] = conf

    def clone_guest_conf(self, state: ClusterState, vmid: int, clone: Guest) -> None:
        """``clone_vmfw_conf``: qemu-server and pve-container clones start with a copy of the source's
        ``.fw`` (API2/Qemu.pm and API2/LXC.pm ``clone_vm``); call it once the clone's Guest exists."""
        source = self.guest_conf(state, vmid)
        if source.options or source.rules:
            copy = FirewallConf(dict(source.options), [dict(r) for r in source.rules], clone)
            self.guests[clone.vmid] = copy


def _ports(value: str, *, icmp: bool = False) -> str | None:
    """``parse_port_name_number_or_range``'s first complaint, or None; ``icmp``: ICMP type names allowed."""
    items = value.split(",")
    if "" in items:
        return "extraneous commas in list"
    count = 0
    icmp_port = False
    for item in items:
        m = re.match(r"^(\d+):(\d+)$", item)
        if m:
            count += 2
            low, high = int(m.group(1)), int(m.group(2))
            for port in (m.group(1), m.group(2)):
                if int(port) > 65535:
                    return f"invalid port '{port}'"
            if low > high:
                return f"backwards range '{low}:{high}' not allowed, did you mean '{high}:{low}'?"
        elif item.isdigit():
            count += 1
            if int(item) > 65535:
                return f"invalid port '{item}'"
        elif icmp and (item in ICMP_TYPES or item in ICMPV6_TYPES):
            icmp_port = True
        elif item not in _SERVICES:
            return f"invalid port '{item}'"
    if icmp_port and count > 0:
        return "ICMP ports not allowed in port range"
    if count > 15:
        return "too many entries in port list (> 15 numbers)"
    return None


def _address_version(param: str, value: str) -> int | None:
    """``parse_address_list`` plus the alias/IP-set existence checks: the IP version of a literal list."""
    if value.startswith("+"):
        name = value[1:]
        if not _NAME_RE.match(name):
            raise param_error({param: f"invalid ipset name '{value}'"})
        raise param_error({param: f"no such ipset '{name}'"})  # the seeded cluster defines no IP sets
    bare = value.removeprefix("dc/").removeprefix("guest/")
    if _NAME_RE.match(bare):
        raise param_error({param: f"no such alias '{value}'"})  # nor aliases
    version: int | None = None
    elements = value.split(",")
    if "" in elements:
        raise param_error({param: "extraneous commas in list"})
    for elem in elements:
        try:
            if "-" in elem:
                first, last = elem.split("-", 1)
                found = ipaddress.ip_address(first).version
                ipaddress.ip_address(last)
            else:
                found = ipaddress.ip_network(elem, strict=False).version
        except ValueError:
            # Net::IP's own error text follows this prefix in PVE; it is not reproduced here
            raise param_error({param: f"invalid IP address: {elem}"}) from None
        if version and version != found:
            raise param_error({param: f"detected mixed ipv4/ipv6 addresses in address list '{value}'"})
        version = found
    if "-" in value and len(elements) > 1:
        raise param_error({param: "you can't use a range in a list"})
    return version


def verify_rule(rule: Rule, env: str) -> Rule:
    """``verify_rule`` for the ``vm``/``ct``/``cluster`` environments; raises the first problem as a 400."""
    icmp_type = str(rule.get("icmp-type") or "")
    if icmp_type and icmp_type not in ICMP_TYPES and icmp_type not in ICMPV6_TYPES:
        # the pve-fw-icmp-type-spec format, checked with the parameters
        raise param_error({"icmp-type": f"invalid icmp-type value '{icmp_type}'"})
    rtype = rule.get("type")
    action = rule.get("action")
    if not rtype:
        raise param_error({"type": "missing property"})
    if not action:
        raise param_error({"action": "missing property"})
    rtype, action = str(rtype), str(action)
    if rtype not in _DIRECTIONS[env]:
        raise param_error({"type": f"invalid rule type '{rtype}' for rule_env '{env}'"})
    if rtype in ("in", "out", "forward"):
        if rtype == "forward" and action == "REJECT":
            raise param_error({"action": "cannot define REJECT rules on forward chain"})
        if action not in ("ACCEPT", "DROP", "REJECT"):
            raise param_error({"action": f"unknown action '{action}'"})
    elif not _NAME_RE.match(action):
        raise param_error({"action": "invalid characters in security group name"})
    iface = rule.get("iface")
    if iface and env in ("vm", "ct") and not re.match(r"^net\d+$", str(iface)):
        raise param_error({"iface": "value does not match the regex pattern 'net\\d+'"})
    if rule.get("macro"):
        preferred = _PREFERRED_MACRO.get(str(rule["macro"]).lower())
        if preferred is None:
            raise param_error({"macro": f"unknown macro '{rule['macro']}'"})
        rule["macro"] = preferred
    version: int | None = None
    proto = str(rule.get("proto") or "")
    if proto:
        if not (proto.isdigit() or proto in _PROTOCOLS):
            raise param_error({"proto": f"unknown protocol '{proto}'"})
        version = {"icmp": 4, "icmpv6": 6, "ipv6-icmp": 6}.get(proto)
    is_icmp = proto in _ICMP_PROTOCOLS
    if rule.get("dport"):
        problem = _ports(str(rule["dport"]), icmp=is_icmp)
        if problem:
            raise param_error({"dport": problem})
        if not proto:
            raise param_error({"proto": "missing property - 'dport' requires this property"})
        if proto not in _PORT_PROTOCOLS and not is_icmp:
            raise param_error({"dport": f"protocol '{proto}' does not support ports"})
    if icmp_type:
        if not is_icmp:
            raise param_error({"proto": "missing property - 'icmp-type' requires this property"})
        if rule.get("dport"):
            raise param_error({"icmp-type": "'icmp-type' cannot be specified together with 'dport'"})
        if icmp_type not in (ICMP_TYPES if proto == "icmp" else ICMPV6_TYPES):
            raise param_error({"icmp-type": f"invalid icmp-type '{icmp_type}' for proto '{proto}'"})
    if rule.get("sport"):
        problem = _ports(str(rule["sport"]))
        if problem:
            raise param_error({"sport": problem})
        if not proto:
            raise param_error({"proto": "missing property - 'sport' requires this property"})
        if proto not in _PORT_PROTOCOLS:
            raise param_error({"sport": f"protocol '{proto}' does not support ports"})
    for key in ("source", "dest"):
        if rule.get(key):
            found = _address_version(key, str(rule[key]))
            if found and version and found != version:
                raise param_error({key: "detected mixed ipv4/ipv6 addresses in rule"})
            version = found or version
    if version:
        rule["ipversion"] = version
    else:
        rule.pop("ipversion", None)
    return rule


def _rule(**kw: ConfigValue) -> Rule:
    rule: Rule = {"enable": 1}
    rule.update({k.replace("_", "-"): v for k, v in kw.items()})
    return verify_rule(rule, "cluster")


def build_firewall(state: ClusterState) -> FirewallStore:
    """The seeded firewall configuration, consistent with the seeded guests and the management network."""
    store = FirewallStore()
    mgmt = "10.10.10.0/24"
    store.cluster_rules = [
        _rule(type="in", action="ACCEPT", macro="SSH", source=mgmt, comment="SSH from the management network"),
        _rule(type="in", action="ACCEPT", proto="tcp", dport="8006", source=mgmt, comment="Proxmox VE web UI"),
        _rule(type="in", action="ACCEPT", macro="Ping", source=mgmt),
    ]
    web = [
        _rule(type="in", action="ACCEPT", macro="HTTP"),
        _rule(type="in", action="ACCEPT", macro="HTTPS"),
        _rule(type="in", action="ACCEPT", macro="SSH", source=mgmt, comment="admin access"),
    ]
    seeded: dict[int, tuple[dict[str, ConfigValue], list[Rule]]] = {
        100: ({"enable": 1, "policy_in": "DROP"}, web),
        101: ({"enable": 1, "policy_in": "DROP"}, web),
        103: (
            {"enable": 1, "policy_in": "DROP"},
            [_rule(type="in", action="ACCEPT", macro="DNS", comment="resolver for the LAN")],
        ),
        104: ({"enable": 1, "policy_in": "DROP", "log_level_in": "info"}, web),
    }
    for vmid, (options, rules) in seeded.items():
        guest = state.guests.get(vmid)
        if guest is not None:
            store.guests[vmid] = FirewallConf(dict(options), [dict(r) for r in rules], guest)
    return store
