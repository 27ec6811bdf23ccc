"""moto's server in a process of its own, with its DynamoDB serialized like the local stack's.

Takes the arguments of `python -m moto.server` (see moto_patches.py for why).
"""

from __future__ import annotations

from moto.server import main

from .moto_patches import patch_moto

if __name__ == "__main__":
    patch_moto()
    main()
