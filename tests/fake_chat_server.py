"""A scripted OpenAI-style chat-completions server on 127.0.0.1, for the server backend tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the scripted server answers to one request."""

    status: int = 200
    body: Any = field(default_factory=dict)  # dict/list -> JSON, str -> sent as is
    delay_s: float = 0.0


class ChatServer(ThreadingHTTPServer):
    """Answers POSTs with its replies in order (the last one repeats) and records each request."""

    daemon_threads = True  # a handler still sleeping past a client's timeout must not block teardown

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies = replies
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_reply(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "json": json.loads(body)})
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = self.server.next_reply(self.path, dict(self.headers), body)
        time.sleep(reply.delay_s)
        payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = payload.encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_server(*replies: Reply) -> ChatServer:
    """A running ChatServer on a free port; stop it with shutdown() and server_close()."""
    server = ChatServer(list(replies))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def completion(text: str, usage: dict[str, int] | None = None, logprobs: Any = None) -> dict[str, Any]:
    """A chat-completions response body."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    body: dict[str, Any] = {"id": "x", "object": "chat.completion", "model": "m", "choices": [choice]}
    if usage is not None:
        body["usage"] = usage
    return body
