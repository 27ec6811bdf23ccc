"""The address guard: only public addresses, whatever form carries them."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lyrics_to_song.addresses import blocked_kind
from lyrics_to_song.errors import RefusedCallback
from lyrics_to_song.webhooks.callbacks import CallbackRules


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("100.64.0.1", "non-public"),  # shared address space: neither private nor global
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 around 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around it
        ("64:ff9b:1::7f00:1", "loopback"),  # local-use NAT64 around 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo: its client is 192.0.2.45
        ("::ffff:10.0.0.1", "private"),
        ("192.0.0.9", None),  # a global address within a special block stays public
        ("64:ff9b::808:808", "reserved"),  # NAT64 at all: its prefix is within ::/8
        ("2606:4700::1111", None),
        ("93.184.216.34", None),
    ],
)
def test_only_what_is_global_inside_and_out_may_be_reached(address: str, kind: str | None) -> None:
    assert blocked_kind(address) == kind


def test_a_callback_to_the_metadata_service_behind_6to4_is_refused() -> None:
    with pytest.raises(RefusedCallback, match="link-local address"):
        CallbackRules().check_url("https://[2002:a9fe:a9fe::]/hook")


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_judged_the_same_in_every_wrapping(ip: ipaddress.IPv4Address) -> None:
    outer = blocked_kind(str(ip))
    wrapped = [
        ipaddress.IPv6Address(f"::ffff:{ip}"),
        ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80)),  # 6to4
        ipaddress.IPv6Address((0x64FF9B << 96) | int(ip)),  # NAT64
    ]
    for address in wrapped:
        inner = blocked_kind(str(address))
        if outer is None:
            # 6to4 and NAT64 prefixes are global themselves; a mapped address is not.
            assert inner in (None, "reserved", "private", "non-public")
        else:
            assert inner is not None, f"{address} carries {ip} ({outer})"
