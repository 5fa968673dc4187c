"""A FIFO open that waits for its other end, done by the supervisor in
notify mode (issue 17, the rest of item 7).

open(2) of a FIFO without O_NONBLOCK waits: read-only for a writer,
write-only for a reader. The notify thread cannot wait, and answering
CONTINUE would let the kernel read the path again (a racing thread could
put another file there). So the FIFO decided on is pinned (an O_PATH fd,
no symlink followed on the way to it) and a thread of its own opens it
through that pin, blocking as the caller's open would; the notification
stays pending meanwhile, and the fd is injected (NOTIF_ADDFD) when the open
returns. O_PATH does not count as a reader or a writer, so the FIFO sees
exactly the opens it would have seen.

When the caller gives up first (it is killed, or before Linux 5.19 a
signal restarts its call under a new id), the waiting open is released by
an open of the other end through the pin, made and closed at once: another
process waiting on the same FIFO at that instant sees an end come and go.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from typing import TYPE_CHECKING

from .._linux import seccomp
from ._request import Request, unserved

if TYPE_CHECKING:
    from ._notify import NotifyLoop

_CHECK_EVERY = 0.5  # seconds between checks that the caller still waits


def wait(loop: NotifyLoop, nid: int, req: Request, pin: int, flags: int) -> bool:
    """Answer ``nid`` once the FIFO pinned by ``pin`` (an O_PATH fd, now
    ours to close) opens with ``flags``. Returns False: the answer and its
    audit event come later, from a worker."""
    loop._begin_answer()  # ended when answered (see NotifyLoop.drain)
    try:
        loop._workers.submit(lambda: _serve(loop, nid, req, pin, flags))
    except OSError as e:
        os.close(pin)
        loop._end_answer()
        seccomp.notif_send(loop.listener, nid, error=unserved(req, e))
        loop.on_request(req)
    return False


def _serve(loop: NotifyLoop, nid: int, req: Request, pin: int, flags: int) -> None:
    # An existing FIFO: creation flags mean nothing now (O_EXCL failed before).
    blocking = (flags & ~(os.O_NONBLOCK | os.O_CREAT | os.O_EXCL)) | os.O_CLOEXEC | os.O_NOCTTY
    result: list[int | OSError] = []
    done = threading.Event()

    def open_it() -> None:
        try:
            result.append(os.open(f"/proc/self/fd/{pin}", blocking))
        except OSError as e:
            result.append(e)
        done.set()

    try:
        try:
            threading.Thread(target=open_it, name="agentsh-fifo", daemon=True).start()
        except RuntimeError as e:
            delivered = seccomp.notif_send(
                loop.listener, nid, error=unserved(req, OSError(errno.EAGAIN, str(e)))
            )
        else:
            while not done.wait(_CHECK_EVERY):
                if not _still_waiting(loop, nid):
                    _release(pin, flags)
                    done.wait()
                    break
            delivered = _deliver(loop, nid, req, result[0], flags)
        if delivered and not req.quiet:
            loop.on_request(req)
    except OSError:  # the session ended meanwhile (the listener is closed)
        pass
    finally:
        os.close(pin)
        loop._end_answer()


def _still_waiting(loop: NotifyLoop, nid: int) -> bool:
    try:
        return seccomp.notif_id_valid(loop.listener, nid)
    except OSError:  # the session ended (the listener is closed)
        return False


def _release(pin: int, flags: int) -> None:
    """Open the other end at once and close it: the waiting open returns."""
    other = os.O_WRONLY if flags & os.O_ACCMODE == os.O_RDONLY else os.O_RDONLY
    with contextlib.suppress(OSError):  # it returned meanwhile (a writer: ENXIO)
        os.close(os.open(f"/proc/self/fd/{pin}", other | os.O_NONBLOCK | os.O_CLOEXEC))


def _deliver(loop: NotifyLoop, nid: int, req: Request, got: int | OSError, flags: int) -> bool:
    if isinstance(got, OSError):
        err = got.errno or errno.EACCES
        req.fields["result"] = errno.errorcode.get(err, str(err))
        return seccomp.notif_send(loop.listener, nid, error=err)
    try:
        try:
            newfd = seccomp.notif_addfd(loop.listener, nid, got, cloexec=bool(flags & os.O_CLOEXEC))
        except OSError as e:
            if e.errno == errno.ENOENT:  # the caller gave up
                return False
            return seccomp.notif_send(loop.listener, nid, error=e.errno or errno.EMFILE)
        return seccomp.notif_send(loop.listener, nid, val=newfd)
    finally:
        os.close(got)
