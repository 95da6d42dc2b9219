"""How `gridrank search` finds and asks a `gridrank serve` of the same index: no model load, ~0.3 s.

A server writes INDEX/serve.json (mode 0600: only its user may read the token) with its URL, its
process and host, and a random token (in the user's state folder when the index folder is read-only);
it removes the file when it stops. `gridrank search` reads
it, and when that process is alive on this host, posts its SearchArgs to /gridrank/cli-search and
renders the JSON it gets back. Any trouble reaching the server (stopped, killed, another index
by now) means a local search instead: the server is a shortcut, never a requirement.

http.client, not httpx: this path exists to answer fast, and httpx alone imports in 0.1 s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from platformdirs import user_state_dir

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


def _link_paths(index_dir: Path) -> list[Path]:
    """Where a server of this index announces itself: the index folder, else (a read-only media mount,
    as a container may have) the user's state folder, under a name made from the index's path."""
    key = hashlib.sha256(str(index_dir.resolve()).encode()).hexdigest()[:16]
    return [index_dir / LINK_FILE, Path(user_state_dir("gridrank")) / "servers" / f"{key}.json"]


def announce(index_dir: Path, url: str, token: str) -> ServerLink | None:
    """Write this process's link file (mode 0600); None when no place for it is writable."""
    link = ServerLink(url.rstrip("/"), os.getpid(), socket.gethostname(), token, str(index_dir.resolve()))
    for path in _link_paths(index_dir):
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".serve-", suffix=".json")  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(dataclasses.asdict(link), f)
            os.replace(tmp, path)
            return link
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
    return None


def withdraw(index_dir: Path, link: ServerLink) -> None:
    """Remove this server's link file, if it is still this server's (another may have started since)."""
    for path in _link_paths(index_dir):
        if _read(path) == link:
            path.unlink(missing_ok=True)


def find(index_dir: Path, check_alive: bool = True) -> ServerLink | None:
    """The server announced for this index, if its process runs on this host."""
    for path in _link_paths(index_dir):
        link = _read(path)
        if link is not None and (not check_alive or (link.host == socket.gethostname() and _alive(link.pid))):
            return link
    return None


def _read(path: Path) -> ServerLink | None:
    try:
        return ServerLink(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


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
