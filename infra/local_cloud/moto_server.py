"""moto's server in a process of its own, with its DynamoDB serialized like the local stack's.

Takes the arguments of `python -m moto.server` (see `serialize_dynamodb` for why).
"""

from __future__ import annotations

from moto.server import main

from .stack import serialize_dynamodb

if __name__ == "__main__":
    serialize_dynamodb()
    main()
