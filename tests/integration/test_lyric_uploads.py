"""Every file put in the lyrics bucket gets an answer: a lyric file its job, any other
file one FAILED notice, unpaid and unread (docs/inputs.md: Lyric files)."""

from __future__ import annotations

from lyrics_to_song.data.rows import JobState
from lyrics_to_song.payment import Outcome
from tests.integration.moto_cloud import Cloud


def test_a_file_that_is_not_a_lyric_file_gets_one_failed_notice_unpaid(cloud: Cloud) -> None:
    notification = cloud.put_lyrics("notes.md", b"[Verse]\nla la")
    assert cloud.send(notification) == [Outcome.REJECTED]
    assert cloud.send(notification) == [Outcome.DUPLICATE], "notified twice: one answer"
    row = cloud.only_row()
    assert row.state is JobState.FAILED
    assert row.error == (
        "notes.md is not a lyric file: the name must end in .txt or .json (in any case)"
    )
    (note,) = cloud.notifications()
    assert (note["status"], note["error"]) == ("FAILED", row.error)
    assert cloud.emulator.submissions == [], "unpaid"


def test_a_lyric_file_whose_suffix_is_in_capitals_is_made(cloud: Cloud) -> None:
    notification = cloud.put_lyrics("LOUD SONG.TXT", b"[Verse]\nla la")
    assert cloud.send(notification) == [Outcome.SUBMITTED]
    assert len(cloud.emulator.submissions) == 1


def test_a_folder_marker_is_no_file_and_gets_no_notice(cloud: Cloud) -> None:
    notification = cloud.put_lyrics("team-a/", b"")
    assert cloud.send(notification) == [Outcome.SKIPPED]
    assert cloud.rows() == []
    assert cloud.notifications() == []
