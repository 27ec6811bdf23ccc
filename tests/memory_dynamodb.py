"""An in-memory DynamoDB client for the calls the line makes, for the backlog benchmark
at 10,000 jobs (moto answers each call in about 10 ms and reads a whole table for every
index query: that size would take over an hour on it).

It does what DynamoDB (and moto) do for the requests the submit function's intake and
the admission send: GetItem, BatchGetItem, PutItem, UpdateItem, DeleteItem and
TransactWriteItems with condition and update expressions over top-level attributes
(comparisons, AND/OR/NOT, IN, BETWEEN, `attribute_exists`, `attribute_not_exists`,
`size`, `contains`, `begins_with`; SET with `+`, `-`, `if_not_exists`, `list_append`,
REMOVE, ADD, DELETE), Query on a global index (Limit, paging and COUNT included) and
Scan (one page). Anything else raises NotImplementedError rather than answer wrongly.
`tests/integration/test_memory_dynamodb.py` shows it gives what moto gives, call by call
and for a whole backlog.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from botocore.exceptions import ClientError

Item = dict[str, Any]
Key = tuple[Any, ...]

_TOKENS = re.compile(r"\s*(?:(<=|>=|<>|[=<>(),+\-])|([#:]?[A-Za-z_][A-Za-z0-9_\-]*))")
_FUNCTIONS = {
    "attribute_exists",
    "attribute_not_exists",
    "size",
    "contains",
    "begins_with",
    "if_not_exists",
    "list_append",
}


@dataclass(frozen=True)
class _Index:
    hash_key: str
    range_key: str | None
    keys_only: bool

    def place(self, item: Item, key: Key) -> tuple[Any, tuple[Any, Key]] | None:
        """Where an item sits in the index (its partition, its rank), if it is in it."""
        if self.hash_key not in item or (self.range_key and self.range_key not in item):
            return None
        rank = _sortable(item[self.range_key]) if self.range_key else ()
        return _hashable(item[self.hash_key]), (rank, key)


@dataclass
class _Table:
    hash_key: str
    range_key: str | None
    indexes: dict[str, _Index]
    items: dict[Key, Item] = field(default_factory=dict)
    # Per index, its items' keys by their hash key's value, in the order of its range
    # key: a query reads its partition only, from where it starts.
    partitions: dict[str, dict[Any, list[tuple[Any, Key]]]] = field(default_factory=dict)

    def key_of(self, item: Item) -> Key:
        names = [self.hash_key] + ([self.range_key] if self.range_key else [])
        return tuple(_hashable(item[name]) for name in names)

    def put(self, key: Key, item: Item | None) -> None:
        """Store (or, with None, delete) an item, and keep the indexes' partitions."""
        before = self.items.pop(key, None)
        if item is not None:
            self.items[key] = item
        for name, index in self.indexes.items():
            partitions = self.partitions.setdefault(name, {})
            if before is not None and (place := index.place(before, key)) is not None:
                entries = partitions[place[0]]
                del entries[bisect.bisect_left(entries, place[1])]
            if item is not None and (place := index.place(item, key)) is not None:
                bisect.insort(partitions.setdefault(place[0], []), place[1])

    def partition(self, index: str, value: Any, *, forward: bool) -> Iterator[Item]:
        """The items of an index whose hash key is `value`, in order."""
        entries = self.partitions.get(index, {}).get(_hashable(value), [])
        for _, key in entries if forward else reversed(entries):
            yield self.items[key]


class MemoryDynamoDB:
    """The DynamoDB client's methods the line uses, on tables held in memory.
    `exceptions` is a real client's, so the code's `except client.exceptions...` holds."""

    def __init__(self, exceptions: Any) -> None:
        self.exceptions = exceptions
        self.tables: dict[str, _Table] = {}

    @classmethod
    def copy_of(cls, client: Any, table_names: list[str]) -> MemoryDynamoDB:
        """Tables as `client` describes them, with the items they hold now."""
        memory = cls(client.exceptions)
        for name in table_names:
            table = client.describe_table(TableName=name)["Table"]
            memory.tables[name] = _Table(
                *_keys(table["KeySchema"]),
                {
                    index["IndexName"]: _Index(
                        *_keys(index["KeySchema"]),
                        keys_only=index["Projection"]["ProjectionType"] == "KEYS_ONLY",
                    )
                    for index in table.get("GlobalSecondaryIndexes", [])
                },
            )
            for page in client.get_paginator("scan").paginate(TableName=name):
                for item in page["Items"]:
                    memory.tables[name].put(memory.tables[name].key_of(item), item)
        return memory

    # Reads

    def get_item(self, *, TableName: str, Key: Item, **more: Any) -> dict[str, Any]:
        _only(more, "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames")
        table = self.tables[TableName]
        item = table.items.get(table.key_of(Key))
        if item is None:
            return {}
        return {"Item": _projected(item, more)}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[Item]] = {}
        for name, asked in RequestItems.items():
            _only(
                asked, "Keys", "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"
            )
            found = (self.get_item(TableName=name, Key=key) for key in asked["Keys"])
            responses[name] = [_projected(got["Item"], asked) for got in found if got]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def query(self, **asked: Any) -> dict[str, Any]:
        _only(
            asked,
            "TableName",
            "IndexName",
            "KeyConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ScanIndexForward",
            "Limit",
            "Select",
            "ExclusiveStartKey",
            "ConsistentRead",
        )
        table = self.tables[asked["TableName"]]
        if "IndexName" not in asked:
            raise NotImplementedError("a query of the table itself")
        index = table.indexes[asked["IndexName"]]
        names, values = (
            asked.get("ExpressionAttributeNames", {}),
            asked["ExpressionAttributeValues"],
        )
        parser = _Parser(asked["KeyConditionExpression"], names, values)
        matches = parser.condition()
        forward = asked.get("ScanIndexForward", True)
        items = table.partition(
            asked["IndexName"], parser.key_value(index.hash_key), forward=forward
        )
        start = asked.get("ExclusiveStartKey")
        if start is not None:
            after = table.key_of(start)
            items = itertools.dropwhile(lambda item: table.key_of(item) != after, items)
            next(items, None)
        limit = asked.get("Limit")
        page: list[Item] = []
        more = False
        for item in items:
            if not matches(item):
                continue
            if limit is not None and len(page) == limit:
                more = True
                break
            page.append(item)
        answer: dict[str, Any] = {"Count": len(page), "ScannedCount": len(page)}
        keys = (table.hash_key, table.range_key, index.hash_key, index.range_key)
        kept = {name for name in keys if name is not None}
        if more:
            answer["LastEvaluatedKey"] = {name: page[-1][name] for name in kept}
        if asked.get("Select") != "COUNT":
            if index.keys_only:
                page = [{n: v for n, v in item.items() if n in kept} for item in page]
            answer["Items"] = [_copied(item) for item in page]
        return answer

    def scan(self, *, TableName: str) -> dict[str, Any]:
        """Every item (one page)."""
        items = [_copied(item) for item in self.tables[TableName].items.values()]
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def get_paginator(self, operation: str) -> _Pages:
        if operation not in ("query", "scan"):
            raise NotImplementedError(operation)
        return _Pages(self.query if operation == "query" else self.scan)

    # Writes

    def put_item(self, **asked: Any) -> dict[str, Any]:
        return self._write([("Put", asked)], transaction=False)

    def update_item(self, **asked: Any) -> dict[str, Any]:
        return self._write([("Update", asked)], transaction=False)

    def delete_item(self, **asked: Any) -> dict[str, Any]:
        return self._write([("Delete", asked)], transaction=False)

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        writes = [next(iter(entry.items())) for entry in TransactItems]
        return self._write(writes, transaction=True)

    def _write(
        self, writes: list[tuple[str, dict[str, Any]]], *, transaction: bool
    ) -> dict[str, Any]:
        """Check every write's condition, then apply them all (or none)."""
        planned: list[tuple[_Table, Key, Item | None, Item | None]] = []  # before, after
        reasons: list[dict[str, str]] = []
        for kind, asked in writes:
            _only(
                asked,
                "TableName",
                "Key",
                "Item",
                "UpdateExpression",
                "ConditionExpression",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "ReturnValues",
            )
            table = self.tables[asked["TableName"]]
            key = table.key_of(asked["Key"] if "Key" in asked else asked["Item"])
            if any(t is table and k == key for t, k, _, _ in planned):
                raise _client_error(
                    "ValidationException",
                    "Transaction request cannot include multiple operations on one item",
                )
            before = table.items.get(key)
            names = asked.get("ExpressionAttributeNames", {})
            values = asked.get("ExpressionAttributeValues", {})
            condition = asked.get("ConditionExpression")
            holds = condition is None or _Parser(condition, names, values).condition()(before or {})
            reasons.append({"Code": "None" if holds else "ConditionalCheckFailed"})
            after = _after(kind, asked, before, names, values)
            planned.append((table, key, before, after))
        if any(r["Code"] != "None" for r in reasons):
            if transaction:
                raise self.exceptions.TransactionCanceledException(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "canceled"},
                        "CancellationReasons": reasons,
                    },
                    "TransactWriteItems",
                )
            raise self.exceptions.ConditionalCheckFailedException(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"}},
                writes[0][0] + "Item",
            )
        for table, key, _, after in planned:
            table.put(key, after)
        if transaction:
            return {}
        returned = writes[0][1].get("ReturnValues", "NONE")
        _, _, before, after = planned[0]
        if returned == "ALL_NEW" and after is not None:
            return {"Attributes": _copied(after)}
        if returned == "ALL_OLD" and before is not None:
            return {"Attributes": _copied(before)}
        if returned not in ("NONE", "ALL_NEW", "ALL_OLD"):
            raise NotImplementedError(returned)
        return {}


@dataclass
class _Pages:
    query: Callable[..., dict[str, Any]]

    def paginate(self, **asked: Any) -> Iterator[dict[str, Any]]:
        while True:
            page = self.query(**asked)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            asked = {**asked, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _after(
    kind: str, asked: dict[str, Any], before: Item | None, names: dict[str, str], values: Item
) -> Item | None:
    if kind == "Put":
        return _item(asked["Item"])
    if kind == "Delete":
        return None
    if kind == "ConditionCheck":
        return _item(before) if before is not None else None
    if kind != "Update":
        raise NotImplementedError(kind)
    after = _item(before) if before is not None else _item(asked["Key"])
    _Parser(asked["UpdateExpression"], names, values).update(after)
    return after


class _Parser:
    """Condition, key condition and update expressions over top-level attributes."""

    def __init__(self, text: str, names: dict[str, str], values: Item) -> None:
        self.tokens: list[str] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKENS.match(text, position)
            if match is None or match.end() == position:
                raise NotImplementedError(f"expression {text!r} at {position}")
            self.tokens.append(match.group(1) or match.group(2))
            position = match.end()
        self.at = 0
        self.names = names
        self.values = values

    def key_value(self, hash_key: str) -> Any:
        """The value a key condition asks of the hash key (`name = :value` first)."""
        name, equals, value = self.tokens[:3]
        if (self.names.get(name, name), equals) != (hash_key, "=") or not value.startswith(":"):
            raise NotImplementedError(f"a key condition starting {self.tokens[:3]}")
        return self.values[value]

    # Tokens

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _keyword(self, *words: str) -> str | None:
        token = self._peek()
        if token is not None and token.upper() in words:
            self.at += 1
            return token.upper()
        return None

    def _expect(self, token: str) -> None:
        if self._peek() != token:
            raise NotImplementedError(f"expected {token!r} at {self._peek()!r}")
        self.at += 1

    def _done(self) -> None:
        if self._peek() is not None:
            raise NotImplementedError(f"unread {self.tokens[self.at :]}")

    def _name(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        if token.startswith(":") or token in "(),=<>+-":
            raise NotImplementedError(f"an attribute name expected at {token!r}")
        if self._peek() in (".", "["):
            raise NotImplementedError("nested attributes")
        return self.names[token] if token.startswith("#") else token

    # Conditions: each returns a test of an item

    def condition(self) -> Callable[[Item], bool]:
        test = self._or()
        self._done()
        return test

    def _or(self) -> Callable[[Item], bool]:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda item: any(p(item) for p in parts)

    def _and(self) -> Callable[[Item], bool]:
        parts = [self._not()]
        while self._keyword("AND"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else lambda item: all(p(item) for p in parts)

    def _not(self) -> Callable[[Item], bool]:
        if self._keyword("NOT"):
            inner = self._not()
            return lambda item: not inner(item)
        if self._peek() == "(":
            self.at += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Callable[[Item], bool]:
        token = self._peek() or ""
        if token in ("attribute_exists", "attribute_not_exists", "contains", "begins_with"):
            return self._test_function()
        left = self._operand()
        if self._keyword("IN"):
            self._expect("(")
            options = [self._operand()]
            while self._peek() == ",":
                self.at += 1
                options.append(self._operand())
            self._expect(")")
            return lambda item: _equal_any(left(item), [o(item) for o in options])
        if self._keyword("BETWEEN"):
            low = self._operand()
            if not self._keyword("AND"):
                raise NotImplementedError("BETWEEN without AND")
            high = self._operand()
            return lambda item: (
                _compare("<=", low(item), left(item)) and _compare("<=", left(item), high(item))
            )
        operator = self._peek() or ""
        if operator not in ("=", "<>", "<", "<=", ">", ">="):
            raise NotImplementedError(f"comparison {operator!r}")
        self.at += 1
        right = self._operand()
        return lambda item: _compare(operator, left(item), right(item))

    def _test_function(self) -> Callable[[Item], bool]:
        function = self.tokens[self.at]
        self.at += 1
        self._expect("(")
        name = self._name()
        argument = None
        if function in ("contains", "begins_with"):
            self._expect(",")
            argument = self._operand()
        self._expect(")")
        if function == "attribute_exists":
            return lambda item: name in item
        if function == "attribute_not_exists":
            return lambda item: name not in item
        assert argument is not None
        if function == "contains":
            return lambda item: _contains(item.get(name), argument(item))
        return lambda item: _begins_with(item.get(name), argument(item))

    def _operand(self) -> Callable[[Item], Any]:
        token = self._peek() or ""
        if token.startswith(":"):
            self.at += 1
            value = self.values[token]
            return lambda item: value
        if token == "size":
            self.at += 1
            self._expect("(")
            name = self._name()
            self._expect(")")
            return lambda item: _size(item.get(name))
        if token in _FUNCTIONS:
            raise NotImplementedError(f"{token} in a condition")
        name = self._name()
        return lambda item: item.get(name)

    # Updates: applied to the item in place

    def update(self, item: Item) -> None:
        seen = False
        while (clause := self._keyword("SET", "REMOVE", "ADD", "DELETE")) is not None:
            seen = True
            while True:
                self._action(clause, item)
                if self._peek() != ",":
                    break
                self.at += 1
        if not seen:
            raise NotImplementedError("an update without SET, REMOVE, ADD or DELETE")
        self._done()

    def _action(self, clause: str, item: Item) -> None:
        name = self._name()
        if clause == "REMOVE":
            item.pop(name, None)
            return
        if clause == "SET":
            self._expect("=")
            value = self._set_value(item)
            item[name] = value
            return
        token = self.tokens[self.at]
        self.at += 1
        value = self.values[token]
        if clause == "ADD":
            item[name] = _added(item.get(name), value)
        else:
            remaining = _set_without(item.get(name), value)
            if remaining is None:
                item.pop(name, None)
            else:
                item[name] = remaining

    def _set_value(self, item: Item) -> Any:
        left = self._set_operand(item)
        operator = self._peek()
        if operator in ("+", "-"):
            self.at += 1
            right = self._set_operand(item)
            if left is None or right is None:
                raise _client_error("ValidationException", "an operand in the update is missing")
            total = Decimal(left["N"]) + (Decimal(right["N"]) * (1 if operator == "+" else -1))
            return {"N": _number_text(total)}
        if left is None:
            raise _client_error("ValidationException", "the update's value is missing")
        return left

    def _set_operand(self, item: Item) -> Any:
        token = self._peek() or ""
        if token.startswith(":"):
            self.at += 1
            return _copied(self.values[token])
        if token == "if_not_exists":
            self.at += 1
            self._expect("(")
            name = self._name()
            self._expect(",")
            fallback = self._set_operand(item)
            self._expect(")")
            return _copied(item[name]) if name in item else fallback
        if token == "list_append":
            self.at += 1
            self._expect("(")
            first = self._set_operand(item)
            self._expect(",")
            second = self._set_operand(item)
            self._expect(")")
            return {"L": [*first["L"], *second["L"]]}
        name = self._name()
        return _copied(item[name]) if name in item else None


# DynamoDB's values: {"S": ...}, {"N": ...}, {"SS": [...]}, ...


def _keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
    kinds = {entry["KeyType"]: entry["AttributeName"] for entry in schema}
    return kinds["HASH"], kinds.get("RANGE")


def _hashable(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    return (kind, Decimal(raw) if kind == "N" else raw)


def _sortable(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    return Decimal(raw) if kind == "N" else raw


def _comparable(value: Any) -> tuple[str, Any] | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, raw),) = value.items()
    if kind == "N":
        return ("N", Decimal(raw))
    if kind in ("SS", "NS", "BS"):
        return (kind, frozenset(Decimal(v) for v in raw) if kind == "NS" else frozenset(raw))
    if kind in ("S", "B", "BOOL", "NULL"):
        return (kind, raw)
    return (kind, repr(raw))


def _compare(operator: str, left: Any, right: Any) -> bool:
    a, b = _comparable(left), _comparable(right)
    if a is None or b is None:
        return operator == "<>" and (a is None) != (b is None)
    if operator == "=":
        return a == b
    if operator == "<>":
        return a != b
    if a[0] != b[0] or a[0] not in ("N", "S", "B"):
        return False
    x, y = a[1], b[1]
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[operator])


def _equal_any(value: Any, options: list[Any]) -> bool:
    return any(_compare("=", value, option) for option in options)


def _size(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    ((kind, raw),) = value.items()
    if kind in ("N", "BOOL", "NULL"):
        return None
    return {"N": str(len(raw))}


def _contains(value: Any, wanted: Any) -> bool:
    if not isinstance(value, dict):
        return False
    ((kind, raw),) = value.items()
    ((wanted_kind, wanted_raw),) = wanted.items()
    if kind == "S":
        return wanted_kind == "S" and wanted_raw in raw
    if kind in ("SS", "NS", "BS"):
        return kind[0] == wanted_kind and _comparable(wanted) in {
            _comparable({kind[0]: v}) for v in raw
        }
    if kind == "L":
        return any(_compare("=", entry, wanted) for entry in raw)
    return False


def _begins_with(value: Any, prefix: Any) -> bool:
    return (
        isinstance(value, dict)
        and "S" in value
        and "S" in prefix
        and value["S"].startswith(prefix["S"])
    )


def _added(current: Any, value: dict[str, Any]) -> dict[str, Any]:
    ((kind, raw),) = value.items()
    if kind == "N":
        total = Decimal(current["N"] if current else "0") + Decimal(raw)
        return {"N": _number_text(total)}
    if kind in ("SS", "NS", "BS"):
        have = list(current[kind]) if current else []
        return {kind: have + [v for v in raw if v not in have]}
    raise NotImplementedError(f"ADD of {kind}")


def _set_without(current: Any, value: dict[str, Any]) -> dict[str, Any] | None:
    ((kind, raw),) = value.items()
    if kind not in ("SS", "NS", "BS"):
        raise NotImplementedError(f"DELETE of {kind}")
    if not current:
        return None
    left = [v for v in current[kind] if v not in raw]
    return {kind: left} if left else None


def _number_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def _item(item: Item) -> Item:
    """A copy of an item, to be kept or handed out."""
    return cast(Item, _copied(item))


def _projected(item: Item, asked: dict[str, Any]) -> Item:
    projection = asked.get("ProjectionExpression")
    if projection is None:
        return _item(item)
    names = asked.get("ExpressionAttributeNames", {})
    wanted = {names.get(n.strip(), n.strip()) for n in projection.split(",")}
    return {n: _copied(v) for n, v in item.items() if n in wanted}


def _only(asked: dict[str, Any], *known: str) -> None:
    unknown = set(asked) - set(known)
    if unknown:
        raise NotImplementedError(f"parameters {sorted(unknown)}")


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DynamoDB")
