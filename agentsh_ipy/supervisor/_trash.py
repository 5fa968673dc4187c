"""soft_delete: a delete becomes a move into the workspace's trash folder.

Each entry is a folder ``<trash>/<id>/`` holding ``item`` (what was deleted)
and ``meta.json`` (where it was, when, by which process, and the item's inode
as the supervisor left it), signed with a key kept outside the sandbox's
reach (``trash.key`` in agentsh-ipy's state directory, hidden from the
sandbox by every policy). ``agentsh-ipy trash restore ID`` moves it back.

The sandbox cannot write the trash (the session protects it), but a restore
runs outside, as the user, later: it must not trust anything the sandbox
could have placed there by a race the rules did not see. So a restore
refuses an entry whose signature does not hold, an item that is not the
inode the supervisor moved (a different file renamed over it, or one changed
since), a destination whose directories include a symlink (they are
resolved without following any), a destination that exists, and one the
policy would not let the sandbox create.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from .. import policy as pol
from .._linux import files
from ._state import state_candidates, state_dir

TRASH_DIR = ".agentsh-trash"
KEY_BYTES = 32
# What of the item's lstat is signed: a different inode, or one written,
# renamed, chmod'ed or linked since (ctime moves), is not what was moved.
_INODE = ("st_dev", "st_ino", "st_mode", "st_size", "st_ctime_ns", "st_nlink")


def key_path() -> str:
    """The trash's signing key: the sandbox may neither read nor write it."""
    return os.path.join(state_dir(), "trash.key")


def key_candidates() -> list[str]:
    """Everywhere the key may be (see _state), without making any directory."""
    return [os.path.join(d, "trash.key") for d in state_candidates()]


@dataclass(frozen=True)
class Entry:
    id: str
    original: str
    deleted_at: float
    meta: dict[str, Any]
    signed: bool  # the supervisor wrote it (its signature holds)


class TrashError(OSError):
    """A restore refused, with the reason."""


def _dir_fd(path: str) -> int:
    """An O_PATH fd of the directory ``path``, resolved without following a
    symlink anywhere (a directory swapped for a link since is refused)."""
    return files.openat2(
        path,
        os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
        0,
        files.RESOLVE_NO_SYMLINKS | files.RESOLVE_NO_MAGICLINKS,
    )


def _inode(st: os.stat_result) -> list[int]:
    return [int(getattr(st, name)) for name in _INODE]


class Trash:
    def __init__(self, workspace: str, key_file: str | None = None) -> None:
        self.root = os.path.join(os.path.realpath(workspace), TRASH_DIR)
        self._key_file = key_file
        self._key: bytes | None = None

    @property
    def key_file(self) -> str:
        # Chosen when first needed: picking the state dir makes it, and a
        # session that never soft-deletes must leave the home as it was.
        if self._key_file is None:
            self._key_file = key_path()
        return self._key_file

    # -- the key -----------------------------------------------------------
    def _load_key(self, create: bool) -> bytes | None:
        if self._key is not None:
            return self._key
        try:
            with open(self.key_file, "rb") as f:
                key = f.read()
        except FileNotFoundError:
            if not create:
                return None
            os.makedirs(os.path.dirname(self.key_file), mode=0o700, exist_ok=True)
            key = os.urandom(KEY_BYTES)
            try:
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o600)  # fmt: skip
            except FileExistsError:  # another supervisor made it first
                return self._load_key(create=False)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        if len(key) != KEY_BYTES:
            raise TrashError(errno.EINVAL, f"{self.key_file} is not a trash key")
        self._key = key
        return key

    def _mac(self, key: bytes, entry_id: str, meta: dict[str, Any]) -> str:
        body = {k: v for k, v in meta.items() if k != "mac"}
        text = json.dumps([entry_id, body], sort_keys=True, separators=(",", ":"))
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    # -- the supervisor ----------------------------------------------------
    def put(self, path: str, **meta: Any) -> tuple[int, str]:
        """Move ``path`` into the trash: (0 or -errno, entry id). The parent
        of ``path`` is opened without following symlinks, so what moves is
        the entry the decision was about, never one a swapped directory
        points at."""
        entry = time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(4).hex()
        folder = os.path.join(self.root, entry)
        parent = -1
        try:
            key = self._load_key(create=True)
            assert key is not None
            parent = _dir_fd(os.path.dirname(path) or "/")
            name = os.path.basename(path)
            os.makedirs(folder, mode=0o700)
            item = os.path.join(folder, "item")
            # /proc/self/fd/N/NAME: through the pinned directory, by name;
            # shutil.move copies across file systems, keeping a symlink a link.
            shutil.move(f"/proc/self/fd/{parent}/{name}", item)
            record = {"original": path, "deleted_at": time.time(), **meta,
                      "inode": _inode(os.lstat(item))}  # fmt: skip
            record["mac"] = self._mac(key, entry, record)
            with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
                json.dump(record, f)
        except OSError as e:
            if os.path.lexists(os.path.join(folder, "item")):
                # moved, but not recorded: put it back rather than lose it
                with contextlib.suppress(OSError):
                    shutil.move(os.path.join(folder, "item"), path)
            shutil.rmtree(folder, ignore_errors=True)
            return -(e.errno or errno.EIO), entry
        finally:
            if parent >= 0:
                os.close(parent)
        return 0, entry

    # -- the user ------------------------------------------------------------
    def entries(self) -> list[Entry]:
        out = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        key = self._load_key(create=False)
        for name in names:
            try:
                with open(os.path.join(self.root, name, "meta.json"), encoding="utf-8") as f:
                    meta = json.load(f)
                original, deleted_at = str(meta["original"]), float(meta["deleted_at"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            signed = key is not None and hmac.compare_digest(
                str(meta.get("mac", "")), self._mac(key, name, meta)
            )
            out.append(Entry(name, original, deleted_at, meta, signed))
        return out

    def restore(self, entry_id: str, policy: pol.Policy | None = None) -> str:
        """Move an entry back; returns its original path. Never overwrites.
        ``policy``: the destination must be one it lets the sandbox create."""
        if "/" in entry_id or entry_id in ("", ".", ".."):
            raise ValueError(f"bad trash entry id {entry_id!r}")
        entry = next((e for e in self.entries() if e.id == entry_id), None)
        if entry is None:
            raise TrashError(errno.ENOENT, f"no trash entry {entry_id} in {self.root}")
        if not entry.signed:
            raise TrashError(
                errno.EPERM,
                f"entry {entry_id} was not recorded by agentsh-ipy (no valid signature):"
                " something else wrote it; not restoring it",
            )
        original = entry.original
        item = os.path.join(self.root, entry_id, "item")
        try:
            now = _inode(os.lstat(item))
        except FileNotFoundError:
            raise TrashError(errno.ENOENT, f"entry {entry_id} has no item") from None
        if now != entry.meta.get("inode"):
            raise TrashError(
                errno.EPERM,
                f"the item of {entry_id} is not the file agentsh-ipy moved there"
                " (replaced or changed since); not restoring it",
            )
        if policy is not None:
            d = policy.check_file("create", original)
            if d.decision != "allow":
                raise TrashError(
                    errno.EACCES,
                    f"the policy does not let the sandbox create {original}"
                    f" (rule {d.rule or 'default'}); not restoring it there",
                )
        try:
            parent = _dir_fd(os.path.dirname(original) or "/")
        except OSError as e:
            raise TrashError(
                e.errno or errno.ENOENT,
                f"the folder {os.path.dirname(original)} is gone or is reached through a"
                f" symlink ({e.strerror}); not restoring {original}",
            ) from None
        try:
            name = os.path.basename(original)
            target = f"/proc/self/fd/{parent}/{name}"
            if os.path.lexists(target):
                raise FileExistsError(
                    errno.EEXIST, f"{original} exists; not overwriting it", original
                )
            shutil.move(item, target)
        finally:
            os.close(parent)
        shutil.rmtree(os.path.join(self.root, entry_id))
        return original
