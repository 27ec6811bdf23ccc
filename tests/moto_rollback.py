"""moto's DynamoDB transactions without copying whole tables: the same writes, with a
failed transaction rolled back item by item.

moto copies every table a transaction touches before it writes, so on a table of ten
thousand rows each transaction costs as much as reading them all. The backlog
benchmark runs its 10,000 jobs with this in place; `tests/integration/test_moto_rollback.py`
shows that the admission's calls give the same rows and the same answers with it as
without it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table


class _TablesUncopied:
    """Stands for the `copy` module inside moto's models: a table is not copied."""

    @staticmethod
    def deepcopy(value: Any) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value)


@contextmanager
def item_rollback() -> Iterator[None]:
    """While in it, transactions save and restore only the items they write (the tables
    here have a hash key alone)."""
    whole_copies = DynamoDBBackend.transact_write_items

    def transact(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.get_table(op["TableName"])
            attrs = op.get("Key") or op["Item"]
            key = DynamoType(attrs[table.hash_key_attr])
            saved.append((table, key, copy.deepcopy(table.items.get(key))))
        try:
            whole_copies(self, transact_items)
        except Exception:
            for table, key, item in reversed(saved):
                if item is None:
                    table.items.pop(key, None)
                else:
                    table.items[key] = item
            raise

    models.copy = _TablesUncopied  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = whole_copies  # type: ignore[method-assign]
        models.copy = copy  # type: ignore[attr-defined]
