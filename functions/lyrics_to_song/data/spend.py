"""What was spent, and how jobs ended, counted per UTC day and tenant as it happens.

Each ending of a job is counted (`Tally`) in the same transaction as the row's change,
with the charge of its submission if the API took it (on the day it was submitted) or
the doubt if its outcome is unknown, so a redelivery, a crash between two writes or a
resubmission can never count it twice or not at all. A song being made is counted when
it ends (at most `MAX_TASK_AGE_SECONDS` later); the caps count it when it starts.

- `spend#<day>#<tenant>` adds up, per model, the songs the API took (`<model>:charged_*`),
  those whose outcome is unknown (`<model>:maybe_*`, and their jobs in `maybe_jobs`),
  and the endings by state (`<model>:ended:<STATE>`);
- `spend#<day>` holds the tenants seen that day (`tenants`), so a report reads a few
  items per day and never scans (docs/producers.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .items import Item, strings, to_attr
from .rows import JobState, Price

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SPEND_PREFIX = "spend#"
NO_MODEL = "-"  # a job refused before it had a request has no model
_BATCH = 100  # BatchGetItem reads at most 100 keys a call


def tenant_day_key(day: str, tenant: str) -> str:
    return f"{SPEND_PREFIX}{day}#{tenant}"


def day_key(day: str) -> str:
    return f"{SPEND_PREFIX}{day}"


@dataclass(frozen=True)
class Tally:
    """One change to count, on the day it happens."""

    day: str
    tenant: str
    model: str | None
    charged: Price | None = None  # a submission the API took
    maybe: Price | None = None  # a submission whose outcome is unknown
    job_id: str | None = None  # listed when maybe charged
    ended: JobState | None = None

    def writes(self, table_name: str) -> list[dict[str, Any]]:
        """The updates that count it, for a transaction beside the row's own write."""
        model = self.model or NO_MODEL
        added: dict[str, float] = {}
        for kind, price in (("charged", self.charged), ("maybe", self.maybe)):
            if price is not None:
                added |= {
                    f"{model}:{kind}_songs": 1,
                    f"{model}:{kind}_credits": price.credits,
                    f"{model}:{kind}_usd": price.usd,
                }
        if self.ended is not None:
            added[f"{model}:ended:{self.ended.value}"] = 1
        names = {f"#a{i}": name for i, name in enumerate(added)}
        values = {f":a{i}": to_attr(value) for i, value in enumerate(added.values())}
        clauses = [f"#a{i} :a{i}" for i in range(len(added))]
        if self.maybe is not None and self.job_id:
            clauses.append("maybe_jobs :job")
            values[":job"] = to_attr(frozenset([self.job_id]))
        return [
            {
                "Update": {
                    "TableName": table_name,
                    "Key": {"counter": to_attr(tenant_day_key(self.day, self.tenant))},
                    "UpdateExpression": "ADD " + ", ".join(clauses),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Update": {
                    "TableName": table_name,
                    "Key": {"counter": to_attr(day_key(self.day))},
                    "UpdateExpression": "ADD tenants :tenant",
                    "ExpressionAttributeValues": {":tenant": to_attr(frozenset([self.tenant]))},
                }
            },
        ]


@dataclass
class Counts:
    """Songs charged and maybe charged, and endings, of one group (tenant, model, day…)."""

    charged_songs: int = 0
    charged_credits: float = 0
    charged_usd: float = 0.0
    maybe_songs: int = 0
    maybe_credits: float = 0
    maybe_usd: float = 0.0
    ended: dict[str, int] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        self.charged_songs += other.charged_songs
        self.charged_credits += other.charged_credits
        self.charged_usd += other.charged_usd
        self.maybe_songs += other.maybe_songs
        self.maybe_credits += other.maybe_credits
        self.maybe_usd += other.maybe_usd
        for state, number in other.ended.items():
            self.ended[state] = self.ended.get(state, 0) + number


@dataclass(frozen=True)
class DaySpend:
    """One tenant's counts of one day, per model."""

    day: str
    tenant: str
    by_model: dict[str, Counts]
    maybe_jobs: frozenset[str]


def _counts_by_model(item: Item) -> dict[str, Counts]:
    found: dict[str, Counts] = {}
    for name, value in item.items():
        if "N" not in value or ":" not in name:
            continue
        model, _, what = name.partition(":")
        counts = found.setdefault(model, Counts())
        number = float(value["N"])
        if what.startswith("ended:"):
            counts.ended[what.removeprefix("ended:")] = int(number)
        elif what.endswith("_songs"):
            setattr(counts, what, int(number))
        elif hasattr(counts, what):
            setattr(counts, what, number)
    return found


@dataclass(frozen=True)
class SpendLedger:
    """Reads the counts back: a few BatchGetItem calls for any span of days."""

    client: DynamoDBClient
    table_name: str

    def days(self, days: Iterable[str], tenant: str | None = None) -> list[DaySpend]:
        days = list(days)
        if tenant is not None:
            pairs = [(day, tenant) for day in days]
        else:
            index = self._get([day_key(day) for day in days])
            pairs = [
                (day, name)
                for day in days
                for name in sorted(strings(index.get(day_key(day), {}), "tenants"))
            ]
        items = self._get([tenant_day_key(day, name) for day, name in pairs])
        return [
            DaySpend(
                day,
                name,
                _counts_by_model(items[tenant_day_key(day, name)]),
                frozenset(strings(items[tenant_day_key(day, name)], "maybe_jobs")),
            )
            for day, name in pairs
            if tenant_day_key(day, name) in items
        ]

    def _get(self, keys: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for chunk in _chunks(keys, _BATCH):
            wanted: dict[str, Any] = {
                self.table_name: {"Keys": [{"counter": to_attr(key)} for key in chunk]}
            }
            while wanted:
                response = self.client.batch_get_item(RequestItems=wanted)
                for item in response["Responses"].get(self.table_name, []):
                    found[item["counter"]["S"]] = item
                wanted = dict(response.get("UnprocessedKeys") or {})
        return found


def _chunks(keys: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]
