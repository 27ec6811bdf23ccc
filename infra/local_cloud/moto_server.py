"""moto's server: on a thread of this process (MotoServer), or in a process of its own
(`python -m local_cloud.moto_server -p PORT`, taking the arguments of `python -m
moto.server`), with its DynamoDB serialized like the local stack's (moto_patches.py says
why)."""

from __future__ import annotations

import logging
import socket

from moto.server import ThreadedMotoServer, main

from .moto_patches import patch_moto


class MotoServer:
    """moto's server on loopback, on a free port unless one is given."""

    def __init__(self, port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if port:
            _check_port_free(port)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


def _check_port_free(port: int) -> None:
    """An OSError when something listens on the port: ThreadedMotoServer's own failure to
    bind happens on its thread, and its start() then waits for ever."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        probe.bind(("127.0.0.1", port))


if __name__ == "__main__":
    patch_moto()
    main()
