"""The address guard: which addresses the functions may connect to, checked on every
connection after the name is resolved (docs/security.md: Addresses).

Only what `ipaddress` calls global is public, after the forms that carry an IPv4 address
inside an IPv6 one are unwrapped (IPv4-mapped, 6to4, NAT64 and Teredo): `2002:a9fe:a9fe::`
is 169.254.169.254, and `100.64.0.1` (shared address space) is not public though it is
not private either. The audio downloads (audio/origins.py) and the webhooks
(webhooks/callbacks.py) hold their hosts to it; http_transport.py checks each connection.
"""

from __future__ import annotations

import ipaddress

# The well-known NAT64 prefix (RFC 6052) and the local-use one (RFC 8215): the IPv4
# address is the last 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_KINDS = ("loopback", "link_local", "private", "multicast", "reserved", "unspecified")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _inner(ip: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address it carries inside."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    inner: list[IPAddress] = [ip]
    if ip.ipv4_mapped:
        inner.append(ip.ipv4_mapped)
    if ip.sixtofour:
        inner.append(ip.sixtofour)
    if ip.teredo:
        inner.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return inner


def _kind(ip: IPAddress) -> str | None:
    for kind in _KINDS:
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def blocked_kind(address: str) -> str | None:
    """What makes an address one never to connect to ("link-local", "private",
    "non-public", ...), or None for a public one. Loopback is among them: callers that
    allow it say so. A ValueError when `address` is no IP address."""
    ip = ipaddress.ip_address(address)
    inner = _inner(ip)
    # An IPv4 address inside names the kind (169.254.169.254 is link-local); the outer
    # address's own kind counts too (a Teredo or 6to4 address is not global itself).
    for candidate in [*inner[1:], inner[0]]:
        kind = _kind(candidate)
        if kind is not None:
            return kind
    return None


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
