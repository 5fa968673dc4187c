"""The notification loop: decode a trapped syscall, decide it by the policy,
answer the kernel, then audit (in that order: the audit never delays the
tracee, and nothing the wrapper or supervisor prints reaches the command)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import stat
import threading
import time
from collections.abc import Callable

from .. import policy as pol
from .._linux import files, seccomp
from .._linux.arch import Arch
from . import _ctty, _fifo_open, _modes, _pinned
from ._decoder import O_CREAT, O_TMPFILE, OPEN_FLAGS, Decoder
from ._request import CONTINUE, Request, unreadable, unserved
from ._workers import Workers


class NotifyLoop(threading.Thread):
    """Serves the listener until stopped. One thread answers every allow and
    deny; approvals go to their own threads so a person thinking does not
    stall every other trapped call."""

    def __init__(
        self,
        listener: int,
        decoder: Decoder,
        arch: Arch,
        on_request: Callable[[Request], None],
        approve: Callable[[Request, Callable[[bool, str], None]], None],
    ) -> None:
        super().__init__(name="agentsh-notify", daemon=True)
        self.listener = listener
        self.decoder = decoder
        self.arch = arch
        self.on_request = on_request
        self.approve = approve
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._sync_r, self._sync_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._synced = threading.Condition()
        self._sync_rounds = 0
        self._answering = 0  # answers given on other threads, not yet audited
        self.error: BaseException | None = None
        self.handled = 0
        self.cpu = 0.0  # this thread's CPU seconds, for stats (final when it ends)
        # Open allowed files here and inject them (race-free); False only when
        # the session's start event names the weaker guarantee opens-continue.
        self.emulate_opens = True
        # The caller's umask by this thread's own (unshare(CLONE_FS)); False:
        # applied explicitly (_modes), where the host refuses that unshare.
        self.private_umask = True
        self.setup_error: str | None = None
        self._set_up = threading.Event()
        self._workers = Workers()

    def stop(self) -> None:
        os.write(self._stop_w, b"x")

    def sync(self, timeout: float) -> bool:
        """Wait until the loop has audited every request it received before
        this call (a task that exited has had its last calls answered, and
        with this their events are written too). False on timeout."""
        with self._synced:
            target = self._sync_rounds + 1
            os.write(self._sync_w, b"s")
            return self._synced.wait_for(
                lambda: self._sync_rounds >= target or not self.is_alive(), timeout
            )

    def drain(self, timeout: float) -> bool:
        """Wait until no answer given on another thread (an approval, a
        connect) is between its answer and its audit event. False on timeout."""
        with self._synced:
            return self._synced.wait_for(lambda: self._answering == 0, timeout)

    def _begin_answer(self) -> None:
        with self._synced:
            self._answering += 1

    def _end_answer(self) -> None:
        with self._synced:
            self._answering -= 1
            self._synced.notify_all()

    def close(self) -> None:
        self._workers.close()
        for fd in (self._stop_r, self._stop_w, self._sync_r, self._sync_w, self.listener):
            with contextlib.suppress(OSError):
                os.close(fd)

    def wait_setup(self, timeout: float) -> str | None:
        """Why this loop cannot serve the sandbox as promised (None: it can).
        Called before the command is let go, so a failure runs nothing."""
        if not self._set_up.wait(timeout):
            return "the notify thread did not start in time"
        return self.setup_error

    def _setup(self) -> bool:
        if not self.emulate_opens or not self.private_umask:
            return True
        # Opens done for the tracee apply its umask: this thread gets its own
        # fs_struct, so umask 0 here leaves the rest of the process alone.
        # Without it opens would have to continue in the kernel, racily: never
        # silently (issue 19).
        try:
            files.unshare_fs()
        except OSError as e:
            self.setup_error = (
                f"notify mode cannot open files for the sandbox race-free: {e} (the detect "
                "probe unshare_fs); a session told so by the host's choice (--mode auto or "
                "notify) applies the caller's umask explicitly instead"
            )
            return False
        os.umask(0)
        return True

    def run(self) -> None:
        try:
            ok = self._setup()
        except BaseException as e:  # fail closed: the session runs nothing
            self.setup_error, ok = f"the notify thread could not start: {e!r}", False
        finally:
            self._set_up.set()
        if not ok:
            return
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        poller.register(self._sync_r, select.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if self._stop_r in ready:
                    return
                ev = ready.get(self.listener, 0)
                if ev & select.POLLIN:
                    self._one()
                elif ev & (select.POLLHUP | select.POLLERR):
                    return  # every filtered task is gone
                if self._sync_r in ready:
                    self._answer_sync()
        except BaseException as e:  # surfaced by the session, never swallowed
            self.error = e
        finally:
            self.cpu = time.thread_time()
            with self._synced:
                self._synced.notify_all()

    def _answer_sync(self) -> None:
        with self._synced:
            with contextlib.suppress(BlockingIOError):
                os.read(self._sync_r, 64)
            self._sync_rounds += 1
            self._synced.notify_all()

    def _one(self) -> None:
        try:
            n = seccomp.notif_recv(self.listener)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EINTR):  # the task died or was interrupted
                return
            raise
        self.handled += 1
        name = self.arch.name_of(n.nr)
        try:
            req = self.decoder.decode(n.nr, n.pid, n.args, name)
        except Exception as e:  # any decoding failure must deny, never crash the loop
            # Fail closed: what we cannot read (or decode) we cannot allow. A task that
            # is already gone gets no answer and no audit line.
            if seccomp.notif_id_valid(self.listener, n.id):
                seccomp.notif_send(self.listener, n.id, error=errno.EACCES)
                self.on_request(unreadable(name, n.pid, e))
            return
        # The /proc reads above may have raced a pid reuse: only answer a
        # notification that is still the one we read.
        if not seccomp.notif_id_valid(self.listener, n.id):
            return
        if req is None:
            seccomp.notif_send(self.listener, n.id, cont=True)
            return
        if req.decision.decision == "approve":
            nid = n.id

            def answer(granted: bool, how: str, req: Request = req) -> None:
                req.fields["approval"] = how
                final = "allow" if granted else "deny"
                req.decision = pol.Decision(final, req.decision.rule, req.decision.message)
                # Counted from before the answer: the task may run on and
                # exit at once, and its session must not end before this
                # event is written (see drain).
                self._begin_answer()
                try:
                    self._answer(nid, req)
                finally:
                    self._end_answer()

            self.approve(req, answer)
            return
        self._answer(n.id, req)

    def _answer(self, nid: int, req: Request) -> None:
        allowed = req.decision.decision in ("allow", "audit")
        if allowed and req.open_spec is not None and self.emulate_opens:
            delivered = self._emulate_open(nid, req, *req.open_spec)
        elif req.action is not None and req.run_async:
            self._begin_answer()  # ended by _answer_later
            try:
                self._workers.submit(lambda: self._answer_later(nid, req))
                return
            except OSError as e:
                self._end_answer()
                delivered = self._unserved(nid, req, e)
        elif req.action is not None:
            try:
                result = req.action()
            except Exception as e:  # a bug or a resource we lack: refuse, keep serving
                delivered = self._unserved(nid, req, e)
            else:
                delivered = self._send_result(nid, result)
        elif allowed:
            delivered = seccomp.notif_send(self.listener, nid, cont=True)
        else:
            delivered = seccomp.notif_send(self.listener, nid, error=req.errno)
        if delivered and not req.quiet:
            self.on_request(req)

    def _send_result(self, nid: int, result: int) -> bool:
        if result == CONTINUE:
            return seccomp.notif_send(self.listener, nid, cont=True)
        val, err = (result, 0) if result >= 0 else (0, -result)
        return seccomp.notif_send(self.listener, nid, val=val, error=err)

    def _unserved(self, nid: int, req: Request, error: BaseException) -> bool:
        return seccomp.notif_send(self.listener, nid, error=unserved(req, error))

    def _answer_later(self, nid: int, req: Request) -> None:
        """An action that may block (a connect), on its own thread."""
        try:
            result = req.action() if req.action is not None else 0
            val, err = (result, 0) if result >= 0 else (0, -result)
            try:
                delivered = seccomp.notif_send(self.listener, nid, val=val, error=err)
            except OSError:  # the session ended meanwhile (the listener is closed)
                return
            if delivered and not req.quiet:
                self.on_request(req)
        finally:
            self._end_answer()

    def _emulate_open(self, nid: int, req: Request, path: str, flags: int, mode: int) -> bool:
        """Open ``path`` (the resolved path we decided on) and inject the fd.

        RESOLVE_NO_SYMLINKS: a component swapped for a symlink since we
        resolved it fails the open instead of leading elsewhere. O_NONBLOCK
        until we know what it is: a FIFO would block this thread. Only a
        FIFO whose open blocks (it waits for its other end) falls back to
        CONTINUE (see _pinned.same_meaning).
        """
        flags &= OPEN_FLAGS  # open(2) ignores other bits; openat2 would refuse them
        ours = flags | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
        terminal = _ctty.names_opener_terminal(path)
        try:
            # Opened with the supervisor's credentials: only for a caller
            # that has the same (a root sandbox's process that changed user
            # is refused, never served with root's rights).
            if not _pinned.same_creds(req.tid):
                req.fields["unemulated"] = "the caller's credentials are not the supervisor's"
                raise OSError(errno.EACCES, "credentials differ")
            creates = flags & (O_CREAT | O_TMPFILE)
            umask = files.umask_of(req.tid) if creates else 0  # only creation uses it
            pin = None if terminal or req.open_via else self._fifo_pin(path, flags, req)
            if pin is not None:  # no open of ours first: it would be an end come and gone
                return _fifo_open.wait(self, nid, req, pin, flags)
            if terminal:
                fd, req.fields["terminal"] = _ctty.open_terminal(req.tid, ours)
            elif req.open_via is not None:  # our own copy's magic link: fixed
                fd = os.open(f"/proc/self/fd/{req.open_via.fd}", ours, mode & ~umask)
            elif flags & O_TMPFILE and not self.private_umask:
                # always made by this open (as O_EXCL tells open_creating),
                # opened with the caller's flags (O_EXCL there: never linkable)
                want, at = mode & ~umask, req.open_at
                fd = _modes.open_creating(
                    lambda f: _pinned.open_decided(path, ours, want, at), ours | os.O_EXCL, want
                )
            elif flags & O_CREAT and not self.private_umask:
                want, at = mode & ~umask, req.open_at
                fd = _modes.open_creating(
                    lambda f: _pinned.open_decided(path, f, want, at), ours, want
                )
            else:
                fd = _pinned.open_decided(path, ours, mode & ~umask, req.open_at)
        except OSError as e:
            if e.errno == errno.ENXIO and not flags & os.O_NONBLOCK and _fifo(path):
                return self._fifo_wait(nid, req, path, flags)  # it waits for a reader
            req.fields["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))
            return seccomp.notif_send(self.listener, nid, error=e.errno or errno.EACCES)
        try:
            st = os.fstat(fd)
            if not terminal and _ctty.is_opener_terminal(st):  # swapped in since: ours
                req.fields["result"] = "EACCES"
                return seccomp.notif_send(self.listener, nid, error=errno.EACCES)
            # A FIFO whose open blocks waits on a thread of its own; not one
            # reopened through our copy (that would race a dup2): the open
            # we made does not wait for a writer, the caller's would have.
            if not _pinned.same_meaning(st.st_mode, flags) and req.open_via is None:
                if stat.S_ISFIFO(st.st_mode):
                    pin = os.open(f"/proc/self/fd/{fd}", os.O_PATH | os.O_CLOEXEC)
                    return _fifo_open.wait(self, nid, req, pin, flags)
                return seccomp.notif_send(self.listener, nid, cont=True)
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            try:
                newfd = seccomp.notif_addfd(
                    self.listener, nid, fd, cloexec=bool(flags & os.O_CLOEXEC)
                )
            except OSError as e:
                if e.errno == errno.ENOENT:  # the task was interrupted or died
                    return False
                return seccomp.notif_send(self.listener, nid, error=e.errno or errno.EMFILE)
            # Gone between the two (False) only if the task died: after
            # NOTIF_RECV, WAIT_KILLABLE_RECV lets no other signal interrupt it.
            # (Before Linux 5.19 a signal can restart its call; the fd then
            # stays open in it, unused.)
            return seccomp.notif_send(self.listener, nid, val=newfd)
        finally:
            os.close(fd)
            if req.open_via is not None:
                req.open_via.close()

    def _fifo_pin(self, path: str, flags: int, req: Request) -> int | None:
        """An O_PATH fd of the FIFO at ``path`` when the caller's open of it
        would wait for the other end; None otherwise (an lstat first: most
        opens are of regular files)."""
        if flags & (os.O_NONBLOCK | os.O_EXCL) or flags & os.O_ACCMODE == os.O_RDWR:
            return None  # it does not wait (O_EXCL: EEXIST, from the open proper)
        if not _fifo(path):
            return None
        try:
            pin = _pinned.open_decided(path, os.O_PATH | os.O_CLOEXEC, 0, req.open_at)
        except OSError:
            return None  # the open proper meets the error
        if stat.S_ISFIFO(os.fstat(pin).st_mode):
            return pin
        os.close(pin)
        return None

    def _fifo_wait(self, nid: int, req: Request, path: str, flags: int) -> bool:
        """A write open of a FIFO with no reader yet: pinned, then waited
        for on a thread of its own (_fifo_open.py)."""
        try:
            pin = _pinned.open_decided(path, os.O_PATH | os.O_CLOEXEC, 0, req.open_at)
            if not stat.S_ISFIFO(os.fstat(pin).st_mode):  # swapped since: not what waits
                os.close(pin)
                raise OSError(errno.ENXIO, "no longer a FIFO")
        except OSError as e:
            req.fields["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))
            return seccomp.notif_send(self.listener, nid, error=e.errno or errno.EACCES)
        return _fifo_open.wait(self, nid, req, pin, flags)


def _fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.lstat(path).st_mode)
    except OSError:
        return False
