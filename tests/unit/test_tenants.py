"""Tenant names are checked whole, wherever one is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lyrics_cli.stack_target import CliError
from lyrics_cli.tenant_settings import check_job_tenant
from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.song_request import is_valid_request_id, parse_request
from lyrics_to_song.tenants import (
    MAX_TENANT_CHARS,
    TenantPolicy,
    file_tenant,
    is_tenant,
    principal_of,
    sender_tenant,
)
from tests.support import song_request

NOT_NAMES = ["acme\n", "ACME", "acme ", " acme", "a" * 33, "", "-acme", "acme-", "ac_me"]


@pytest.mark.parametrize("name", NOT_NAMES)
def test_what_is_not_a_tenant_name_is_refused_everywhere_a_tenant_is_read(name: str) -> None:
    with pytest.raises(InvalidRequest, match="'tenant'"):
        parse_request(song_request(tenant=name), "minimax-music")
    with pytest.raises(CliError, match="--tenant"):
        check_job_tenant(name)
    if name:  # empty metadata is no metadata
        with pytest.raises(InvalidRequest, match="'tenant' metadata"):
            file_tenant("song.txt", name, from_key=False, policy=TenantPolicy.OPEN)
    if "/" not in name and name.strip():
        with pytest.raises(InvalidRequest, match="first folder"):
            file_tenant(f"{name}/song.txt", None, from_key=True, policy=TenantPolicy.BOUND)
    with pytest.raises(InvalidRequest, match="'tenant'"):
        sender_tenant(name, {"acme", name}, "AIDAPRODUCER")


@given(st.text(max_size=40))
def test_a_name_taken_is_whole_and_safe(text: str) -> None:
    if is_tenant(text):
        assert len(text) <= MAX_TENANT_CHARS
        assert set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        for variant in (text + "\n", text + " ", text.upper() + "X", "\n" + text):
            assert not is_tenant(variant)


@given(st.from_regex(r"[\x21-\x7e]{1,20}", fullmatch=True))
def test_a_request_id_with_a_final_newline_is_not_the_same_id(request_id: str) -> None:
    assert is_valid_request_id(request_id)
    assert not is_valid_request_id(request_id + "\n")


def test_a_model_name_with_a_final_newline_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="'model'"):
        parse_request(song_request(model="minimax-music\n"), "minimax-music")


def test_a_senders_principal_is_its_user_or_role_whatever_the_session() -> None:
    assert principal_of("AIDAEXAMPLEUSER") == "AIDAEXAMPLEUSER"
    assert principal_of("AROAEXAMPLEROLE:i-0abc") == "AROAEXAMPLEROLE"
    assert principal_of("AWS:AROAEXAMPLEROLE:shop-service") == "AROAEXAMPLEROLE"


@pytest.mark.parametrize(
    ("named", "bound", "tenant"),
    [
        (None, set(), "default"),  # bound to none: the default tenant
        ("default", set(), "default"),
        (None, {"acme"}, "acme"),  # naming none: its only tenant
        ("acme", {"acme", "shop"}, "acme"),
        (None, {"default", "acme"}, "default"),
    ],
)
def test_a_bound_sender_submits_for_its_own_tenants(
    named: str | None, bound: set[str], tenant: str
) -> None:
    assert sender_tenant(named, bound, "AIDAPRODUCER") == tenant


@pytest.mark.parametrize(
    ("named", "bound", "reason"),
    [
        ("shop", {"acme"}, "sender AIDAPRODUCER may not submit for tenant shop; it may for acme"),
        ("acme", set(), "may not submit for tenant acme; it may for default"),
        ("default", {"acme"}, "may not submit for tenant default"),  # no escape from its caps
        (None, {"acme", "shop"}, "may submit for acme, shop: the request must name one"),
    ],
)
def test_a_bound_sender_naming_another_tenant_is_refused_with_the_reason(
    named: str | None, bound: set[str], reason: str
) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        sender_tenant(named, bound, "AIDAPRODUCER")


def test_under_bound_a_files_metadata_cannot_name_a_tenant_its_folder_does_not() -> None:
    with pytest.raises(InvalidRequest, match="only a lyric file's folder can name a tenant"):
        file_tenant("song.txt", "shop", from_key=False, policy=TenantPolicy.BOUND)
    assert file_tenant("song.txt", "shop", from_key=False, policy=TenantPolicy.OPEN) == "shop"
    assert file_tenant("song.txt", None, from_key=False, policy=TenantPolicy.BOUND) == "default"
    assert file_tenant("acme/s.txt", None, from_key=True, policy=TenantPolicy.BOUND) == "acme"
