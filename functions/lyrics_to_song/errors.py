"""Every exception the package raises on purpose, and what each means for a job.

    LyricsToSongError              the base of all of them
    ├── ConfigError                a setting is missing or malformed: the function cannot start
    ├── InvalidRequest             input the user must fix: the job ends FAILED, nothing paid
    │   └── RefusedCallback        its callback_url may not be called (also when delivering)
    ├── MusicApiError              an API call gave no usable answer; its `kind` says what next:
    │                                PERMANENT  the request is wrong: the job ends FAILED
    │                                ACCOUNT    bad key or no credits: the job waits for the owner
    │                                TRANSIENT  rate limit, server trouble, network: later
    │                              `maybe_accepted`: a submission may have reached the API anyway,
    │                              so it ends UNKNOWN and is never resent by itself
    ├── AudioGone                  a finished song's audio can no longer be had: the job FAILS
    │   └── RefusedAudioSource     its link points where songs may not come from: FAILS too
    ├── DownloadFailed             the audio could not be fetched whole, or is not a song: tried
    │   └── NotASong               again a few times, then the job FAILS with this reason
    ├── OverBudget                 a spending cap (a `Cap`) is reached: the job waits on the
    │                              queue, unpaid
    └── RetryLater                 the record goes back to the queue untouched (SQS redelivers,
                                   or the webhook function hides it until its next attempt)

Exceptions are built whole: a changed copy is a new exception (`redacted`,
`possibly_accepted`), never a flag set on one already raised.
"""

from __future__ import annotations

from enum import StrEnum


class LyricsToSongError(Exception):
    """Base of the package's own exceptions."""


class ConfigError(LyricsToSongError, ValueError):
    """A configuration variable is missing or malformed; the message names it."""


class InvalidRequest(LyricsToSongError, ValueError):
    """Input a user must fix: the message names the field and the rule it broke."""


class RefusedCallback(InvalidRequest):
    """A callback_url that is not https, carries credentials, is not on CALLBACK_HOSTS,
    or reaches a loopback, private or otherwise internal address (docs/webhooks.md)."""


class ErrorKind(StrEnum):
    PERMANENT = "permanent"  # the request itself is wrong: the job fails
    ACCOUNT = "account"  # bad key or no credits: the job waits for the owner
    TRANSIENT = "transient"  # rate limit, server trouble, network: try again later


class MusicApiError(LyricsToSongError):
    """An API call that did not give a usable answer. Never carries the key."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_accepted: bool = False,
        raw_body: str | None = None,
        malformed: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        # True when a submission may have reached the API even though no answer came back:
        # resubmitting it could pay twice.
        self.maybe_accepted = maybe_accepted
        self.raw_body = raw_body
        # True when the API answered, but with a body that could not be understood.
        self.malformed = malformed

    def _copy(self, message: str, raw_body: str | None, maybe_accepted: bool) -> MusicApiError:
        return MusicApiError(
            self.kind,
            message,
            status=self.status,
            retry_after=self.retry_after,
            maybe_accepted=maybe_accepted,
            raw_body=raw_body,
            malformed=self.malformed,
        )

    def redacted(self, secret: str) -> MusicApiError:
        """The same error without a secret the server may have echoed back."""
        if not secret:
            return self
        body = self.raw_body.replace(secret, "[redacted]") if self.raw_body else self.raw_body
        return self._copy(str(self).replace(secret, "[redacted]"), body, self.maybe_accepted)

    def possibly_accepted(self) -> MusicApiError:
        """The same error, for a submission the API may have taken despite it."""
        return self._copy(str(self), self.raw_body, maybe_accepted=True)


class AudioGone(LyricsToSongError):
    """The audio can no longer be had (expired or missing URL, bad hex): the job fails."""


class RefusedAudioSource(AudioGone):
    """The audio's link (or a redirect) is not https, not on an allowed host, or reaches a
    loopback, private or otherwise internal address (docs/security.md: Downloads)."""


class DownloadFailed(LyricsToSongError):
    """One attempt to fetch the audio failed (too slow, too large, cut off, not audio)."""


class NotASong(DownloadFailed):
    """What came back is not audio of the declared kind; the message says what it is."""


class Cap(StrEnum):
    """The spending caps (data/caps.py keeps their counts)."""

    DAILY = "daily"
    IN_FLIGHT = "in-flight"
    TENANT_DAILY = "tenant daily"
    TENANT_IN_FLIGHT = "tenant in-flight"
    TENANT_MONTHLY = "tenant monthly"  # its budget in credits for the month
    PAUSED = "tenant paused"  # not a count: its operator holds the tenant's new jobs
    LINE = "in line"  # not a count: earlier jobs of its tenant wait, it joins behind them


class OverBudget(LyricsToSongError):
    """A cap is reached: the job must wait in the queue, unpaid, for `retry_after` s."""

    def __init__(self, cap: Cap, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.cap = cap
        self.retry_after = retry_after


class RetryLater(LyricsToSongError):
    """This record must go back to the queue (transient or account-level trouble)."""
