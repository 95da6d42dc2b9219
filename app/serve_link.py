"""How `gridrank search` finds and asks a `gridrank serve` of the same index: no model load, ~0.3 s.

A server writes INDEX/serve.json (mode 0600: only its user may read the token) with its URL, its
process and host, and a random token; it removes the file when it stops. `gridrank search` reads
it, and when that process is alive on this host, posts its SearchArgs to /gridrank/cli-search and
renders the JSON it gets back. Any trouble reaching the server (stopped, killed, another index
by now) means a local search instead: the server is a shortcut, never a requirement.

http.client, not httpx: this path exists to answer fast, and httpx alone imports in 0.1 s.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.search_args import SearchArgs
from retrieval.errors import GridrankError

LINK_FILE = "serve.json"
ROUTE = "/gridrank/cli-search"
CONNECT_TIMEOUT_S = 0.5  # a live server on this host accepts at once
ANSWER_TIMEOUT_S = 600.0  # a rerank on a cold model takes a while


class ServerRefused(GridrankError, ValueError):
    """The server ran the search and refused it (a bad query): the same error a local search gives."""


@dataclass(frozen=True)
class ServerLink:
    url: str  # where this host reaches it, e.g. http://127.0.0.1:7860
    pid: int
    host: str  # socket.gethostname() of the server: an index on a shared disk may be served elsewhere
    token: str
    index: str  # the index folder it serves, resolved


def new_token() -> str:
    return secrets.token_urlsafe(32)


def announce(index_dir: Path, url: str, token: str) -> ServerLink | None:
    """Write INDEX/serve.json for this process; None when the index folder is not writable."""
    link = ServerLink(url.rstrip("/"), os.getpid(), socket.gethostname(), token, str(index_dir.resolve()))
    try:
        fd, tmp = tempfile.mkstemp(dir=index_dir, prefix=".serve-", suffix=".json")  # 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(link), f)
        os.replace(tmp, index_dir / LINK_FILE)
    except OSError:
        return None
    return link


def withdraw(index_dir: Path, link: ServerLink) -> None:
    """Remove INDEX/serve.json if it is still this server's (another may have started since)."""
    if find(index_dir, check_alive=False) == link:
        (index_dir / LINK_FILE).unlink(missing_ok=True)


def find(index_dir: Path, check_alive: bool = True) -> ServerLink | None:
    """The server announced for this index, if its process runs on this host."""
    try:
        link = ServerLink(**json.loads((index_dir / LINK_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if check_alive and (link.host != socket.gethostname() or not _alive(link.pid)):
        return None
    return link


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def local_url(host: str, port: int) -> str:
    """The URL a client on this host uses for a server listening on `host`."""
    if host in ("0.0.0.0", "::", ""):  # every interface: loopback is one of them
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def ask(link: ServerLink, args: SearchArgs) -> dict | None:
    """The server's answer (`gridrank search --json`'s data), or None when it could not answer."""
    parts = urlsplit(link.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
    body = json.dumps({"index": link.index, "args": dataclasses.asdict(args)})
    try:
        connection.connect()
        connection.sock.settimeout(ANSWER_TIMEOUT_S)
        connection.request("POST", parts.path + ROUTE, body, {"Content-Type": "application/json",
                                                              "Authorization": f"Bearer {link.token}"})
        reply = connection.getresponse()
        data = json.loads(reply.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    if reply.status == 400 and isinstance(data, dict) and "error" in data:
        raise ServerRefused(data["error"])
    return data if reply.status == 200 and isinstance(data, dict) else None
