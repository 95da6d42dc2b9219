"""Where an index keeps its vectors: `faiss` (files in the index folder, the default),
`milvus-lite:PATH` (an embedded Milvus database file) or `milvus://HOST:PORT` (a Milvus server or
cluster). Pure: parsing and naming, tested without a store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.errors import SettingsError

StoreKind = Literal["faiss", "milvus-lite", "milvus"]
FORMS = "faiss, milvus-lite:PATH (a database file; relative to the index folder) or milvus://HOST:PORT"
_MILVUS_URL = re.compile(r"milvus://(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})/?")


@dataclass(frozen=True)
class StoreSpec:
    kind: StoreKind
    location: str = ""  # milvus-lite: the database file; milvus: host:port

    @property
    def text(self) -> str:
        """The spec as a user writes it (what the catalog records)."""
        return "faiss" if self.kind == "faiss" else f"{self.kind}:{self.location}" if self.kind == "milvus-lite" else (
            f"milvus://{self.location}")

    def uri(self, index_dir: Path) -> str:
        """What pymilvus's MilvusClient connects to: a local database file, or the server's HTTP address."""
        if self.kind == "milvus-lite":
            return str((index_dir / self.location).resolve())
        return f"http://{self.location}"


def parse_store(value: str) -> StoreSpec:
    """A --store value as a StoreSpec; SettingsError naming the forms that work."""
    value = value.strip()
    if value == "faiss":
        return StoreSpec("faiss")
    if value.startswith("milvus-lite:"):
        path = value.removeprefix("milvus-lite:")
        if not path:
            raise SettingsError(f"--store {value!r} names no database file: use milvus-lite:PATH, e.g. milvus-lite:vectors.db")
        if not path.endswith(".db"):  # milvus-lite refuses other names
            raise SettingsError(f"--store {value!r}: a milvus-lite database file must end in .db, e.g. milvus-lite:vectors.db")
        return StoreSpec("milvus-lite", path)
    if form := _MILVUS_URL.fullmatch(value):
        if not 0 < int(form["port"]) < 65536:
            raise SettingsError(f"--store {value!r}: the port must be 1-65535 (Milvus listens on 19530 by default)")
        return StoreSpec("milvus", f"{form['host']}:{int(form['port'])}")
    raise SettingsError(f"--store {value!r} is not a vector store gridrank knows: use {FORMS}")
