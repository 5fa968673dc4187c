"""soft_delete: a delete becomes a move into the workspace's trash folder.

Each entry is a folder ``<trash>/<id>/`` holding ``item`` (what was deleted)
and ``meta.json`` (where it was, when, by which process). The supervisor
moves it (the sandbox cannot write the trash: the session protects it), and
``agentsh-ipy trash restore ID`` moves it back.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

TRASH_DIR = ".agentsh-trash"


@dataclass(frozen=True)
class Entry:
    id: str
    original: str
    deleted_at: float
    meta: dict[str, Any]


class Trash:
    def __init__(self, workspace: str) -> None:
        self.root = os.path.join(os.path.realpath(workspace), TRASH_DIR)

    def put(self, path: str, **meta: Any) -> tuple[int, str]:
        """Move ``path`` into the trash: (0 or -errno, entry id)."""
        entry = time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(4).hex()
        folder = os.path.join(self.root, entry)
        try:
            os.makedirs(folder, mode=0o700)
            with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
                json.dump({"original": path, "deleted_at": time.time(), **meta}, f)
            shutil.move(path, os.path.join(folder, "item"))
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            return -(e.errno or errno.EIO), entry
        return 0, entry

    def entries(self) -> list[Entry]:
        out = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        for name in names:
            try:
                with open(os.path.join(self.root, name, "meta.json"), encoding="utf-8") as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                continue
            out.append(Entry(name, meta["original"], meta["deleted_at"], meta))
        return out

    def restore(self, entry_id: str) -> str:
        """Move an entry back; returns its original path. Never overwrites."""
        if "/" in entry_id or entry_id in ("", ".", ".."):
            raise ValueError(f"bad trash entry id {entry_id!r}")
        folder = os.path.join(self.root, entry_id)
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            original = str(json.load(f)["original"])
        if os.path.lexists(original):
            raise FileExistsError(errno.EEXIST, f"{original} exists; not overwriting it", original)
        os.makedirs(os.path.dirname(original), exist_ok=True)
        shutil.move(os.path.join(folder, "item"), original)
        shutil.rmtree(folder)
        return original
