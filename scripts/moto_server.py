#!/usr/bin/env python3
"""moto's server, with DynamoDB's conditional writes made atomic, as DynamoDB's are.

DynamoDB evaluates a ConditionExpression and performs the write as one atomic step: of two
concurrent `PutItem`s with `attribute_not_exists(id)` exactly one succeeds (Amazon DynamoDB
Developer Guide, "Condition expressions" / "Conditional writes"). moto serves each request on
its own thread and checks the condition, then writes, without a lock, so under load both can
succeed, which made the worker's exactly-once claim test fail on moto where DynamoDB would not.
Here every DynamoDB write of the backend holds one lock. Same arguments as `moto_server`.
"""
import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITES = threading.Lock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)
    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
