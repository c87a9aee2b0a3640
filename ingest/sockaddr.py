"""auditd SOCKADDR `saddr`: the raw struct sockaddr, hex-encoded."""

from __future__ import annotations

import ipaddress

from provgraph.ingest.errors import ParseError

_AF_INET, _AF_INET6 = 2, 10


def decode_sockaddr(saddr: str | None) -> tuple[str, int] | None:
    """(ip, port) for IPv4/IPv6; None for other families (unix, netlink...)."""
    if not saddr:
        raise ParseError("SOCKADDR.saddr", "missing")
    try:
        data = bytes.fromhex(saddr)
    except ValueError:
        raise ParseError("SOCKADDR.saddr", "not hex") from None
    if len(data) < 2:
        raise ParseError("SOCKADDR.saddr", "too short")
    family = int.from_bytes(data[:2], "little")  # sa_family is host order (little on x86/arm)
    if family == _AF_INET and len(data) >= 8:
        return str(ipaddress.IPv4Address(data[4:8])), int.from_bytes(data[2:4], "big")
    if family == _AF_INET6 and len(data) >= 24:
        address = ipaddress.IPv6Address(data[8:24])
        ip = address.ipv4_mapped or address
        return str(ip), int.from_bytes(data[2:4], "big")
    if family in (_AF_INET, _AF_INET6):
        raise ParseError("SOCKADDR.saddr", f"too short for family {family}")
    return None
