"""A job's identity is a function of (tenant, request_id) that no other pair shares."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lyrics_to_song.data.items import item_of
from lyrics_to_song.data.rows import Row
from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.song_request import MAX_REQUEST_ID_CHARS, parse_request, same_song
from lyrics_to_song.sources import QueuedRequest, job_id_for, request_identity

# What a producer may send: a valid tenant name, a valid request_id (printable ASCII,
# `'` and `/` included, the characters an attacker would reach for first).
tenants = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?", fullmatch=True) | st.just(
    "default"
)
request_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=MAX_REQUEST_ID_CHARS
) | st.builds(lambda t, r: f"'{t}'/{r}", tenants, st.text("abc-1/'", min_size=1, max_size=8))


@given(tenants, request_ids, tenants, request_ids)
def test_no_two_distinct_pairs_share_an_identity(t1: str, r1: str, t2: str, r2: str) -> None:
    if (t1, r1) != (t2, r2):
        assert request_identity(t1, r1) != request_identity(t2, r2)
        assert job_id_for(request_identity(t1, r1)) != job_id_for(request_identity(t2, r2))


@given(tenants, request_ids)
def test_the_job_a_request_names_is_its_pairs(tenant: str, request_id: str) -> None:
    job = QueuedRequest({"request_id": request_id}, "m").job_for(tenant)
    assert job.job_id == job_id_for(request_identity(tenant, request_id))
    assert job.request_id == request_id


def test_ids_of_jobs_made_before_still_resolve() -> None:
    """The ids a stack gave before this rule (the default tenant's with no scope, another's
    scoped with its quoted name) are the ids the same requests get now."""
    assert QueuedRequest({"request_id": "order-1"}, "m").job_for("default").job_id == (
        job_id_for("request:order-1")
    )
    assert QueuedRequest({"request_id": "order-1"}, "m").job_for("acme").job_id == (
        job_id_for("request:'acme'/order-1")
    )


def test_a_default_id_dressed_as_another_tenants_is_a_job_of_its_own() -> None:
    forged = QueuedRequest({"request_id": "'acme'/order-1"}, "m").job_for("default")
    acmes = QueuedRequest({"request_id": "order-1"}, "m").job_for("acme")
    assert forged.job_id != acmes.job_id
    assert forged.job_id == job_id_for("request:'default'/'acme'/order-1")


def test_rows_written_before_rows_kept_request_ids_still_give_theirs() -> None:
    """A row of the previous version has no `request_id`: a request's job gives the one
    its source names; a refusal's, a file's and a request without one give none."""

    def row(source: str, name: str) -> Row:
        return Row.from_item(
            item_of(
                {
                    "job_id": "job-" + "0" * 32,
                    "state": "COMPLETED",
                    "source": source,
                    "source_name": name,
                    "created_at": 1.0,
                }
            )
        )

    assert row("sqs:order-9", "order-9").request_id == "order-9"
    assert row("sqs:message/m-1", "order-9").request_id is None, "a refusal written before"
    assert row("sqs:message/m-1", "request").request_id is None
    assert row("s3://lyrics/a.txt", "a.txt").request_id is None


texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=60,
).filter(lambda t: t.strip())


@given(texts, texts, st.sampled_from([None, "r-1", "'acme'/x"]))
def test_a_held_request_read_back_from_its_row_asks_for_the_same_song(
    prompt: str, lyrics: str, request_id: str | None
) -> None:
    """A held job is started by the request its row keeps, and a held row takes only its
    own request: what the row keeps must read back as the very same request."""
    body = {"prompt": prompt, "lyrics": lyrics} | ({"request_id": request_id} if request_id else {})
    try:
        kept = json.dumps(parse_request(body, "minimax-music").as_item(), sort_keys=True)
    except InvalidRequest:
        return  # refused before anything is kept
    again = parse_request(json.loads(kept), "minimax-music").as_item()
    assert json.dumps(again, sort_keys=True) == kept
    assert same_song(kept, kept)
