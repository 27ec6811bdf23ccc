"""Spending caps: songs submitted per UTC day, and songs in flight at once.

Both live in the spending table and are taken in the same transaction that writes a
job's SUBMITTING row (`Reservation`, handed to the task table), so a row exists exactly
when its share of both caps was taken:

- `day#YYYY-MM-DD` counts the submissions of that day (`submitted`), refunded when the
  API surely refused one (nothing was paid);
- `in-flight` holds the ids of the jobs started and not yet seen to end (`holders`,
  a string set). Nothing removes a holder when its job ends: when the set is full,
  the submit function reads the holders' rows and drops those that ended. The rows
  are the truth, so a crash anywhere cannot leak a place for good.

Every tenant has caps: its own, set at run time (`caps#<tenant>`: `per_day`,
`in_flight`, and a monthly budget `monthly_credits`: monthly.py), else the stack's
defaults for tenants (TENANT_SONGS_PER_DAY, TENANT_SONGS_IN_FLIGHT); `default` without
caps of its own has the stack's alone. Its jobs take a song of `day#<date>#<tenant>` and
a place in `in-flight#<tenant>`, in the same transaction, beside the global two; so a
tenant's day is counted from its first song, and caps set at noon count the morning.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import Cap, OverBudget
from .items import (
    Fields,
    Item,
    item_of,
    items_named,
    strings,
    text,
    to_attr,
    update_clause,
    whole,
)
from .line import LINE_KEY, stamps_in
from .monthly import MonthlySpend, credits_in, give_back, month_of, monthly_spend
from .rows import DEFAULT_TENANT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IN_FLIGHT_KEY = "in-flight"
DAY_PREFIX = "day#"
TENANT_CAPS_PREFIX = "caps#"
# Longest delay SQS allows on a message: a job over the daily cap looks again this often.
MAX_QUEUE_DELAY_SECONDS = 900
DAY_ITEM_TTL_DAYS = 3


@dataclass(frozen=True)
class TenantCaps:
    """One tenant's caps, beside the stack's: its own (`own`), or the defaults."""

    tenant: str
    per_day: int
    in_flight: int
    own: bool = True
    monthly_credits: int | None = None  # its budget for a UTC month, in credits; None: none


def day_counter(day: str, tenant: str | None = None) -> str:
    """The name of a day's count: the stack's, or (with `tenant`) that tenant's own."""
    return f"{DAY_PREFIX}{day}" + (f"#{tenant}" if tenant is not None else "")


def in_flight_counter(tenant: str | None = None) -> str:
    """The name of the set of jobs in flight: the stack's, or that tenant's own."""
    return IN_FLIGHT_KEY + (f"#{tenant}" if tenant is not None else "")


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def counter_key(name: str) -> Item:
    """The key of one item of the spending table."""
    return item_of({"counter": name})


@dataclass(frozen=True)
class Reservation:
    """One song of a day's cap and one place in flight, for one job.

    The task table writes it in the transaction that writes the job's row; a job
    already holding a place (a resubmission) keeps it rather than taking another.
    """

    job_id: str
    day: str
    table_name: str
    per_day: int
    in_flight: int
    expires_at: int
    tenant_caps: TenantCaps | None = None
    monthly: MonthlySpend | None = None

    @property
    def caps(self) -> tuple[Cap, ...]:
        """The caps in the order of `writes`."""
        caps: tuple[Cap, ...] = (Cap.DAILY, Cap.IN_FLIGHT)
        if self.tenant_caps is not None:
            caps += (Cap.TENANT_DAILY, Cap.TENANT_IN_FLIGHT)
        return caps + ((Cap.TENANT_MONTHLY,) if self.monthly is not None else ())

    def writes(self) -> list[dict[str, Any]]:
        writes = [
            self._day(day_counter(self.day), self.per_day),
            self._in_flight(in_flight_counter(), self.in_flight),
        ]
        if self.tenant_caps is not None:
            caps = self.tenant_caps
            writes += [
                self._day(day_counter(self.day, caps.tenant), caps.per_day),
                self._in_flight(in_flight_counter(caps.tenant), caps.in_flight),
            ]
        if self.monthly is not None:
            writes.append(self.monthly.write())
        return writes

    def _day(self, name: str, cap: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_key(name),
                "UpdateExpression": "ADD submitted :one SET expires_at = :expires",
                "ConditionExpression": "attribute_not_exists(submitted) OR submitted < :cap",
                "ExpressionAttributeValues": {
                    ":one": to_attr(1),
                    ":cap": to_attr(cap),
                    ":expires": to_attr(self.expires_at),
                },
            }
        }

    def _in_flight(self, name: str, cap: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_key(name),
                "UpdateExpression": "ADD holders :job",
                "ConditionExpression": "attribute_not_exists(holders)"
                " OR size(holders) < :cap OR contains(holders, :job_id)",
                "ExpressionAttributeValues": {
                    ":job": to_attr(frozenset([self.job_id])),
                    ":job_id": to_attr(self.job_id),
                    ":cap": to_attr(cap),
                },
            }
        }


@dataclass(frozen=True)
class Budget:
    """Data access for the spending table, with the two limits it enforces."""

    client: DynamoDBClient
    table_name: str
    per_day: int
    in_flight: int
    in_flight_retry_seconds: int = 60  # songs take 30-90 s
    # The caps of a tenant without caps of its own (songs per day, in flight); tools that
    # only read the counters leave them out.
    tenant_defaults: tuple[int, int] | None = None

    def caps_of(self, tenant: str) -> TenantCaps | None:
        """The tenant's caps, its own or the defaults (read at each submission: set at
        run time)."""
        return self.terms_of(tenant).caps

    def terms_of(self, tenant: str) -> TenantTerms:
        """The tenant's caps (its own, else the defaults) and default callback, in one read.

        The defaults are for tenants beside `default`, so that no one of them takes the
        stack's whole day unless its operator says so; `default` without caps of its own
        has the stack's alone, so a stack used by it alone is not slowed."""
        terms = TenantStore(self.client, self.table_name).terms(tenant)
        if terms.caps is None and self.tenant_defaults is not None and tenant != DEFAULT_TENANT:
            per_day, in_flight = self.tenant_defaults
            default = TenantCaps(tenant, per_day, in_flight, own=False)
            return dataclasses.replace(terms, caps=default)
        return terms

    def reserve(
        self, job_id: str, now: float, tenant_caps: TenantCaps | None = None, credits: int = 0
    ) -> Reservation:
        """What the job's row must take with it: a song of today's cap and a place in
        flight, and the same of its tenant's `tenant_caps`, and the `credits` it costs of
        its tenant's monthly budget, if it has one."""
        expires = datetime.fromtimestamp(now, UTC) + timedelta(days=DAY_ITEM_TTL_DAYS)
        budget = tenant_caps.monthly_credits if tenant_caps else None
        tenant = tenant_caps.tenant if tenant_caps else DEFAULT_TENANT
        return Reservation(
            job_id=job_id,
            day=day_of(now),
            table_name=self.table_name,
            per_day=self.per_day,
            in_flight=self.in_flight,
            expires_at=int(expires.timestamp()),
            tenant_caps=tenant_caps,
            monthly=monthly_spend(tenant, budget, credits, self.table_name, now),
        )

    def over(self, cap: Cap, now: float, tenant: str = DEFAULT_TENANT) -> OverBudget:
        """The error that says a cap is reached, with what is used of it (read now), and
        how long the job waits."""
        day = day_of(now)
        if cap is Cap.TENANT_MONTHLY:
            month, caps = month_of(now), self.caps_of(tenant)
            used = credits_in(self.client, self.table_name, month, tenant)
            budget = caps.monthly_credits if caps else 0
            return OverBudget(
                cap,
                f"tenant {tenant} is at its monthly budget, {used} of {budget} credits "
                f"for {month} (UTC)",
                MAX_QUEUE_DELAY_SECONDS,
            )
        if cap in (Cap.DAILY, Cap.IN_FLIGHT):
            who, cap_of = "the stack", (self.per_day, self.in_flight)
            counted: str | None = None
        else:
            caps = self.caps_of(tenant)
            who, cap_of = f"tenant {tenant}", (caps.per_day, caps.in_flight) if caps else (0, 0)
            counted = tenant
        if cap in (Cap.DAILY, Cap.TENANT_DAILY):
            used = self.submitted_on(day, counted)
            return OverBudget(
                cap,
                f"{who} is at its daily cap, {used} of {cap_of[0]} songs for {day} (UTC)",
                MAX_QUEUE_DELAY_SECONDS,
            )
        used = len(self.holders(counted))
        return OverBudget(
            cap,
            f"{who} is at its in-flight cap, {used} of {cap_of[1]} songs being made",
            self.in_flight_retry_seconds,
        )

    def refund(
        self, day: str, tenant: str | None = None, monthly: MonthlySpend | None = None
    ) -> None:
        """Give back a song of that day's cap (and of the tenant's, when it was counted
        there too, and its credits of the tenant's month): the API surely refused it,
        nothing was paid."""
        if monthly is not None:
            give_back(self.client, self.table_name, monthly.month, monthly.tenant, monthly.credits)
        names = [day_counter(day)] + ([day_counter(day, tenant)] if tenant is not None else [])
        for name in names:
            # Nothing counted that day (the item expired, or the tenant has no caps).
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=counter_key(name),
                    UpdateExpression="ADD submitted :minus_one",
                    ConditionExpression="submitted > :zero",
                    ExpressionAttributeValues={":minus_one": to_attr(-1), ":zero": to_attr(0)},
                )

    def _read(self, name: str) -> Item:
        return self.client.get_item(
            TableName=self.table_name, Key=counter_key(name), ConsistentRead=True
        ).get("Item", {})

    def submitted_on(self, day: str, tenant: str | None = None) -> int:
        """Songs counted against that day's cap: the stack's, or a tenant's own."""
        return whole(self._read(day_counter(day, tenant)), "submitted") or 0

    def holders(self, tenant: str | None = None) -> set[str]:
        """The jobs holding places in flight: the stack's, or a tenant's own."""
        return strings(self._read(in_flight_counter(tenant)), "holders")

    def drop(self, job_ids: set[str], tenant: str | None = None) -> None:
        """Free the places of jobs that have ended."""
        if job_ids:
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key(in_flight_counter(tenant)),
                UpdateExpression="DELETE holders :jobs",
                ExpressionAttributeValues={":jobs": to_attr(frozenset(job_ids))},
            )


@dataclass(frozen=True)
class TenantTerms:
    """What a tenant has of its own, set at run time: caps, a default callback_url; and
    whether it is one of the stack's tenants at all, and paused (data/tenant_registry.py)."""

    caps: TenantCaps | None = None
    callback_url: str | None = None
    known: bool = True
    paused: bool = False
    waiting: bool = False  # jobs of its wait in line: a new one joins behind them


@dataclass(frozen=True)
class TenantStore:
    """Tenants' own settings in the spending table, set at run time (`lyrics-to-song
    caps`, `lyrics-to-song callback`): one item each, `caps#<tenant>`, read with one
    GetItem at each submission."""

    client: DynamoDBClient
    table_name: str

    def terms(self, tenant: str) -> TenantTerms:
        """The tenant's item, and whether jobs of its wait in line, in one request."""
        key = counter_key(TENANT_CAPS_PREFIX + tenant)
        response = self.client.batch_get_item(
            RequestItems={self.table_name: {"Keys": [key, LINE_KEY], "ConsistentRead": True}}
        )
        found = response["Responses"].get(self.table_name, [])
        if response.get("UnprocessedKeys"):  # throttled: read them one by one
            found = [i for k in (key, LINE_KEY) if (i := self._get(k))]
        item = next((i for i in found if i.get("counter") == key["counter"]), {})
        line = next((i for i in found if i.get("counter") == LINE_KEY["counter"]), {})
        return TenantTerms(
            caps_in_item(tenant, item),
            text(item, "callback_url"),
            known=tenant == DEFAULT_TENANT or (bool(item) and "removed_at" not in item),
            paused="paused_at" in item,
            waiting=tenant in stamps_in(line),
        )

    def _get(self, key: Item) -> Item:
        return self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get(
            "Item", {}
        )

    def get(self, tenant: str) -> TenantCaps | None:
        return self.terms(tenant).caps

    def put(self, caps: TenantCaps) -> None:
        self._set(
            caps.tenant,
            {
                "per_day": caps.per_day,
                "in_flight": caps.in_flight,
                "monthly_credits": caps.monthly_credits,
            },
        )

    def unset_caps(self, tenant: str) -> None:
        self._set(tenant, {"per_day": None, "in_flight": None, "monthly_credits": None})

    def set_callback(self, tenant: str, url: str | None) -> None:
        """The tenant's default callback_url (checked by the caller); None removes it."""
        self._set(tenant, {"callback_url": url})

    def _set(self, tenant: str, fields: Fields) -> None:
        clause, names, values = update_clause(fields)
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": counter_key(TENANT_CAPS_PREFIX + tenant),
            "UpdateExpression": clause,
            "ExpressionAttributeNames": names,
        }
        if values:  # a removal alone has none, and DynamoDB refuses an empty map
            update["ExpressionAttributeValues"] = values
        self.client.update_item(**update)

    def all(self) -> list[TenantCaps]:
        """Every tenant with caps of its own (a scan: the table holds a few dozen items)."""
        named = items_named(self.client, self.table_name, TENANT_CAPS_PREFIX, having="per_day")
        found = [caps for name, item in named if (caps := caps_in_item(name, item)) is not None]
        return sorted(found, key=lambda caps: caps.tenant)


def caps_in_item(tenant: str, item: Item) -> TenantCaps | None:
    per_day, in_flight = whole(item, "per_day"), whole(item, "in_flight")
    if per_day is None or in_flight is None:
        return None  # no caps set: a default callback alone, or no item
    return TenantCaps(tenant, per_day, in_flight, monthly_credits=whole(item, "monthly_credits"))
