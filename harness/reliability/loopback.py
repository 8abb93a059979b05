"""A JSON endpoint on 127.0.0.1 whose every reply a function decides.

The campaign's stand-in for an OpenAI-compatible server: a misbehaving one for the secrets
part, a deterministic judge for the killed runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[bytes, Any], tuple[int, Any]]  # (request body, headers) -> (status, JSON)


class LoopbackServer:
    def __init__(self, reply: Reply, delay: float = 0.0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the campaign's output clean
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = reply(body, self.headers)
                data = json.dumps(payload).encode()
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-request

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
