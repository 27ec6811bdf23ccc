"""Where the local stack makes moto behave as AWS does, for what the functions rely on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_dynamodb_lock = threading.RLock()
_sending = threading.local()


def serialize_dynamodb() -> None:
    """Let moto's DynamoDB answer one request at a time, as a consistent store would.

    moto (5.1) is not safe under concurrent requests: a TransactWriteItems that is
    refused puts back a copy of each whole table taken when it began, undoing every
    write other requests made meanwhile, and a query can meet a table changing under it.
    The functions run concurrent requests on purpose (a batch's records, overlapping
    polls), so the local stack makes moto take them in turn. Idempotent.
    """
    from moto.dynamodb.responses import DynamoHandler

    call = DynamoHandler.call_action
    if getattr(call, "serialized", False):
        return

    def serialized(self: DynamoHandler) -> Any:
        with _dynamodb_lock:
            return call(self)

    serialized.serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialized  # type: ignore[method-assign]


def sender_ids_from_callers() -> None:
    """Give an SQS message the SenderId of whoever sent it, as SQS does.

    moto gives every message one fixed SenderId. SQS sets it to the sender's IAM unique
    id (a user's `AIDA…`, a role session's `AROA…:session`), which TenantPolicy=bound
    relies on. Here a message sent with the access key of an IAM user (or of a role
    assumed through STS) made in moto has that user's or session's id, as moto's STS
    gives it; any other key keeps moto's fixed one. Idempotent.
    """
    from moto.sqs.models import Message
    from moto.sqs.responses import SQSResponse
    from moto.sts.models import sts_backends

    if getattr(SQSResponse.send_message, "sender_ids", False):
        return

    def caller(self: SQSResponse) -> str | None:
        user_id, arn, _ = sts_backends[self.current_account][self.partition].get_caller_identity(
            self.get_access_key(), self.region
        )
        return None if arn.endswith(":user/moto") else user_id  # moto's answer for any key

    def sent_by_caller(send: Callable[[SQSResponse], Any]) -> Callable[[SQSResponse], Any]:
        def send_as_caller(self: SQSResponse) -> Any:
            _sending.sender = caller(self)
            try:
                return send(self)
            finally:
                _sending.sender = None

        send_as_caller.sender_ids = True  # type: ignore[attr-defined]
        return send_as_caller

    made = Message.__init__

    def init(self: Message, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        sender = getattr(_sending, "sender", None)
        if sender is not None:
            self.sender_id = sender

    Message.__init__ = init  # type: ignore[method-assign]
    SQSResponse.send_message = sent_by_caller(SQSResponse.send_message)  # type: ignore[method-assign,assignment]
    SQSResponse.send_message_batch = sent_by_caller(SQSResponse.send_message_batch)  # type: ignore[method-assign,assignment]


def patch_moto() -> None:
    """Every patch above (each idempotent)."""
    serialize_dynamodb()
    sender_ids_from_callers()
