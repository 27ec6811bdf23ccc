"""Which callback URLs may be called, and how long a failed webhook waits."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from lyrics_to_song.errors import RefusedCallback, RetryLater
from lyrics_to_song.webhooks.callbacks import CallbackRules
from lyrics_to_song.webhooks.delivery import MAX_RETRY_SECONDS, next_wait

DEPLOYED = CallbackRules()
LOCAL = CallbackRules(local=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://[::1]/hook", "a loopback address"),
        ("https://[::ffff:10.0.0.1]/hook", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://0.0.0.0/", "its host is a private address (0.0.0.0)"),
        ("https://224.0.0.1/", "a multicast address"),
        ("http://localhost/", "must be https"),
        (
            "http://example.com/h?token=s3cr3t",
            "must be https (the notice would go out in clear text), got http://example.com/h?…",
        ),
        ("https://hooks.example.com/a#frag", "#fragment"),
        ("https://:pw@hooks.example.com/", "carries credentials"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048"),
        ("", "must be an https URL"),
    ],
)
def test_urls_that_may_not_be_called(url: str, reason: str) -> None:
    with pytest.raises(RefusedCallback, match=re.escape(reason)):
        DEPLOYED.check_url(url)


def test_a_public_https_url_is_taken_as_given() -> None:
    url = "https://Hooks.Example.com:8443/songs?token=abc"
    assert DEPLOYED.check_url(f"  {url} ") == url


def test_the_allow_list_ignores_case_and_only_names_hosts() -> None:
    rules = CallbackRules.of([" Hooks.Example.com "], local=False)
    assert rules.check_url("https://HOOKS.example.com/x")
    with pytest.raises(RefusedCallback, match="not one of CALLBACK_HOSTS"):
        rules.check_url("https://example.com/x")


def test_a_local_run_may_call_loopback_over_http_and_nothing_else_more() -> None:
    assert LOCAL.check_url("http://127.0.0.1:8080/hook")
    assert LOCAL.check_url("http://localhost:8080/hook")
    with pytest.raises(RefusedCallback, match="must be https"):
        LOCAL.check_url("http://hooks.example.com/hook")
    with pytest.raises(RefusedCallback, match="a private address"):
        LOCAL.check_url("https://192.168.1.10/hook")


def _resolving_to(*addresses: str) -> Any:
    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(RefusedCallback, match=r"resolves to a private address \(10.9.8.7\)"):
        DEPLOYED.check_resolved("https://hooks.example.com/", _resolving_to("8.8.8.8", "10.9.8.7"))
    DEPLOYED.check_resolved("https://hooks.example.com/", _resolving_to("8.8.8.8"))


def test_dns_that_fails_for_a_moment_is_tried_again_later() -> None:
    def flaky(host: str, port: int, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(RetryLater, match="could not resolve"):
        DEPLOYED.check_resolved("https://hooks.example.com/", flaky)


def test_waits_double_up_to_an_hour_and_lose_up_to_half_at_random() -> None:
    longest = [next_wait(30, n, lambda low, high: high) for n in range(1, 12)]
    assert longest[:5] == [30, 60, 120, 240, 480]
    assert max(longest) == MAX_RETRY_SECONDS
    shortest = [next_wait(30, n, lambda low, high: low) for n in range(1, 12)]
    assert shortest[:3] == [15, 30, 60]
    assert next_wait(1, 1, lambda low, high: low) == 1, "never under a second"
