"""The Jupyter channels between the frontend and the sandboxed kernel.

The supervisor binds the five channels of the connection file Jupyter gave
it (its key stays with the supervisor) and connects to the inner kernel's
channels (a connection file of their own, another key). Every message is
checked against the key of the side it came from and signed again for the
other side, so the sandboxed kernel can neither read nor forge a message
the frontend trusts, and the supervisor sees the protocol as it happens:

* execute_requests are forwarded one at a time, each after the previous
  one's execute_reply; forwarding one starts that cell (``on_cell``), so
  which cell an event belongs to is decided by the frontend's requests as
  the supervisor forwards them;
* the inner kernel's ``status: idle`` for a cell is held until the
  supervisor has published that cell's audit (``audit_for``) with the same
  parent, so the audit is the cell's last output;
* the supervisor's own questions (approvals) go out on the outer stdin
  channel and their answers never reach the inner kernel;
* what the kernel sends to be shown passes ``_outputs`` first: the frontend
  renders it in the Jupyter server's page, where a script would act with the
  server's access (``on_refused`` hears what was held back).

One thread owns every socket (zmq sockets are not thread-safe); other
threads talk to it through a queue and an inproc wakeup socket. The
heartbeat is answered by the supervisor.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import hashlib
import hmac
import html
import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from ._outputs import Refused, screen_iopub, screen_reply

DELIM = b"<IDS|MSG>"
ROUTED = ("shell", "control", "stdin")


@dataclass
class _Request:
    channel: str
    idents: list[bytes]
    header: dict[str, Any]
    frames: list[bytes]  # [header, parent, metadata, content, *buffers], as received
    allow_stdin: bool = False


@dataclass
class _Question:
    prompt: str
    request: _Request
    done: threading.Event = field(default_factory=threading.Event)
    answer: str | None = None


def _url(info: dict[str, Any], channel: str) -> str:
    port = info[f"{channel}_port"]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    return f"tcp://{info['ip']}:{port}"


PROTOCOL_VERSION = "5.4"


class Session:
    """One side's key and the messages the supervisor writes itself, in the
    wire format of the Jupyter messaging protocol. (jupyter_client's Session
    does the same; importing it costs ~100 ms of the supervisor's CPU while
    the sandboxed kernel starts.)"""

    def __init__(self, key: bytes, signature_scheme: str) -> None:
        kind, _, digest = signature_scheme.partition("-")
        if kind != "hmac" or digest not in hashlib.algorithms_available:
            raise ValueError(f"unsupported signature_scheme {signature_scheme!r}")
        # An empty key: messages are neither signed nor checked (Jupyter's meaning).
        self.auth = hmac.new(key, digestmod=digest) if key else None
        random = os.urandom(16).hex()
        self.session = f"{random[:8]}-{random[8:]}"
        self.bsession = self.session.encode()
        self.username = os.environ.get("USER", "username")
        self._count = 0

    def sign(self, frames: list[bytes]) -> bytes:
        """The signature of [header, parent, metadata, content]."""
        if self.auth is None:
            return b""
        h = self.auth.copy()
        for frame in frames:
            h.update(frame)
        return h.hexdigest().encode()

    def msg(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
        """A new message answering the request whose header is ``parent``."""
        self._count += 1
        now = datetime.datetime.now(datetime.UTC)
        header = {
            "msg_id": f"{self.session}_{os.getpid()}_{self._count}",
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session,
            "date": now.isoformat().replace("+00:00", "Z"),
            "version": PROTOCOL_VERSION,
        }
        return {"header": header, "parent_header": parent, "metadata": {}, "content": content}

    def send(self, sock: zmq.Socket[bytes], msg: dict[str, Any], idents: list[bytes]) -> None:
        # ASCII JSON: an audited file name that is not UTF-8 (lone
        # surrogates in the event) is sent as a \u escape, never as bytes
        # that are not UTF-8.
        frames = [
            json.dumps(msg[part], allow_nan=False).encode()
            for part in ("header", "parent_header", "metadata", "content")
        ]
        sock.send_multipart([*idents, DELIM, self.sign(frames), *frames])


def _decoded(frames: list[bytes]) -> tuple[dict[str, Any], ...] | None:
    """A kernel message's header, parent header and content; None when one is
    not a JSON object (the sandboxed kernel signs what it likes)."""
    try:
        parts = tuple(json.loads(frames[i]) for i in (0, 1, 3))
    except ValueError:
        return None
    return parts if all(isinstance(p, dict) for p in parts) else None


def _session(info: dict[str, Any]) -> Session:
    key = info["key"]
    return Session(
        key.encode() if isinstance(key, str) else key,
        info.get("signature_scheme", "hmac-sha256"),
    )


class Proxy(threading.Thread):
    def __init__(
        self,
        outer: dict[str, Any],
        inner: dict[str, Any],
        *,
        on_cell: Callable[[int | None, str | None], None],
        audit_for: Callable[[int], tuple[dict[str, Any], int] | None],
        audit_size: Callable[[int], int] = lambda _: 0,
        on_refused: Callable[[Refused, int | None], None] = lambda *_: None,
        note: str | None = None,
    ) -> None:
        """``on_cell(count, cell_id)`` when an execute_request goes in;
        ``audit_for(count)`` gives the mimebundle shown at its end and how
        many events it holds (None: nothing); ``audit_size(count)`` how many
        it holds now. ``on_refused(r, cell)`` once per cell for each kind of
        output not passed on (cell None: not a cell's message). ``note``,
        when set, is shown under every cell (the kernel runs unsandboxed)."""
        super().__init__(name="agentsh-proxy", daemon=True)
        self.ctx = zmq.Context()
        self.outer_session = _session(outer)
        self.inner_session = _session(inner)
        self.on_cell = on_cell
        self.audit_for = audit_for
        self.audit_size = audit_size
        self.on_refused = on_refused
        self.refused: set[tuple[int | None, Refused]] = set()  # told, per cell
        self.shown: dict[int, int] = {}  # cell -> events in its display
        # Cells that had nothing to show at their end: if events of theirs
        # come later, their audit is shown then, under the cell running.
        self.quiet: set[int] = set()
        self.note = note
        self.out: dict[str, zmq.Socket[bytes]] = {}
        self.inn: dict[str, zmq.Socket[bytes]] = {}
        for ch in ROUTED:
            self.out[ch] = self.ctx.socket(zmq.ROUTER)
            self.out[ch].bind(_url(outer, ch))
        self.out["iopub"] = self.ctx.socket(zmq.PUB)
        self.out["iopub"].bind(_url(outer, "iopub"))
        self.hb = self.ctx.socket(zmq.ROUTER)
        self.hb.bind(_url(outer, "hb"))
        # The inner kernel routes stdin to the identity of the shell request.
        identity = self.inner_session.bsession
        for ch in ROUTED:
            self.inn[ch] = self.ctx.socket(zmq.DEALER)
            self.inn[ch].setsockopt(zmq.IDENTITY, identity)
            self.inn[ch].connect(_url(inner, ch))
        self.inn["iopub"] = self.ctx.socket(zmq.SUB)
        self.inn["iopub"].setsockopt(zmq.SUBSCRIBE, b"")
        self.inn["iopub"].connect(_url(inner, "iopub"))
        self.wake_addr = f"inproc://agentsh-wake-{id(self)}"
        self.wake = self.ctx.socket(zmq.PULL)
        self.wake.bind(self.wake_addr)
        self.tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.routes: dict[str, _Request] = {}  # msg_id -> the request it answers
        self.pending: collections.deque[_Request] = collections.deque()
        self.current: _Request | None = None
        self.cells: dict[str, int] = {}  # execute_request msg_id -> its cell, until idle
        self.replied: set[str] = set()  # ... whose execute_reply went out
        # ... whose idle came before their reply: (topics, frames, parent)
        self.held_idle: dict[str, tuple[list[bytes], list[bytes], dict[str, Any]]] = {}
        self.count = 0
        self.questions: dict[str, _Question] = {}  # our open input_requests
        self.inner_asks: dict[str, bool] = {}  # the kernel's open input_requests
        self.stopped = threading.Event()
        self.dropped = 0  # messages with a bad signature

    # -- called from other threads ------------------------------------------
    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the proxy thread (which owns the sockets)."""
        self.tasks.put(fn)
        push = self.ctx.socket(zmq.PUSH)
        push.connect(self.wake_addr)
        push.send(b"")
        push.close(linger=1000)

    def ask(self, prompt: str, timeout: float) -> str | None:
        """Ask the person at the frontend of the running cell; None when that
        request did not allow stdin, or no answer came in time."""
        box: list[_Question] = []

        def send() -> None:
            req = self.current
            if req is None or not req.allow_stdin:
                return
            q = _Question(prompt, req)
            msg = self.outer_session.msg(
                "input_request", {"prompt": prompt, "password": False}, req.header
            )
            self.questions[msg["header"]["msg_id"]] = q
            self.outer_session.send(self.out["stdin"], msg, req.idents)
            box.append(q)

        done = threading.Event()

        def send_then_signal() -> None:
            try:
                send()
            finally:
                done.set()

        self.call(send_then_signal)
        done.wait(5)
        if not box:
            return None
        if not box[0].done.wait(timeout):
            return None
        return box[0].answer

    def stop(self) -> None:
        self.stopped.set()
        self.call(lambda: None)

    # -- the proxy thread ------------------------------------------------------
    def run(self) -> None:
        threading.Thread(target=self._heartbeat, name="agentsh-hb", daemon=True).start()
        poller = zmq.Poller()
        handlers: dict[Any, Callable[[], None]] = {}
        for ch in ROUTED:
            poller.register(self.out[ch], zmq.POLLIN)
            handlers[self.out[ch]] = lambda ch=ch: self._from_frontend(ch)  # type: ignore[misc]
            poller.register(self.inn[ch], zmq.POLLIN)
            handlers[self.inn[ch]] = lambda ch=ch: self._from_kernel(ch)  # type: ignore[misc]
        poller.register(self.inn["iopub"], zmq.POLLIN)
        handlers[self.inn["iopub"]] = self._iopub
        poller.register(self.wake, zmq.POLLIN)
        handlers[self.wake] = self._tasks
        while not self.stopped.is_set():
            for sock, _ in poller.poll():
                handlers[sock]()
        # The kernel's last words (a shutdown_reply) still go out.
        for sock, _ in poller.poll(200):
            if sock is not self.wake:
                handlers[sock]()
        for s in (*self.out.values(), *self.inn.values(), self.wake):
            s.close(linger=200)

    def _heartbeat(self) -> None:
        with contextlib.suppress(zmq.ZMQError):  # the context ends at exit
            zmq.proxy(self.hb, self.hb)

    def _tasks(self) -> None:
        while self.wake.poll(0):
            self.wake.recv()
        while True:
            try:
                fn = self.tasks.get_nowait()
            except queue.Empty:
                return
            fn()

    def _verify(self, session: Session, frames: list[bytes]) -> bool:
        """frames: [hmac, header, parent, metadata, content, *buffers]."""
        if len(frames) < 5:
            return False
        if session.auth is None:
            return True
        return hmac.compare_digest(frames[0], session.sign(frames[1:5]))

    def _split(self, session: Session, msg: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
        try:
            i = msg.index(DELIM)
        except ValueError:
            return None
        idents, frames = msg[:i], msg[i + 1 :]
        if not self._verify(session, frames):
            self.dropped += 1
            return None
        return idents, frames[1:]

    def _signed(self, session: Session, frames: list[bytes]) -> list[bytes]:
        return [DELIM, session.sign(frames[:4]), *frames]

    # frontend -> kernel
    def _from_frontend(self, ch: str) -> None:
        split = self._split(self.outer_session, self.out[ch].recv_multipart())
        if split is None:
            return
        idents, frames = split
        header = json.loads(frames[0])
        req = _Request(ch, idents, header, frames)
        if ch == "stdin":
            q = self._question_answered(json.loads(frames[1]).get("msg_id"))
            if q is not None:  # our own question: the kernel never sees the answer
                q.answer = str(json.loads(frames[3]).get("value", ""))
                q.done.set()
                return
        if ch != "stdin":  # an input_reply is answered by nothing
            self._route(header["msg_id"], req)
        if ch == "shell" and header.get("msg_type") == "execute_request":
            content = json.loads(frames[3])
            req.allow_stdin = bool(content.get("allow_stdin", True))
            self.pending.append(req)
            self._next_cell()
            return
        self.inn[ch].send_multipart(self._signed(self.inner_session, frames))

    def _question_answered(self, parent: str | None) -> _Question | None:
        """Which of our questions an input_reply answers, if any. Frontends
        that leave the reply's parent empty (jupyter_client's input())
        answer the oldest open question, ours or the kernel's: ours when
        the kernel has none open."""
        if parent in self.questions:
            return self.questions.pop(parent)
        if parent in self.inner_asks:
            self.inner_asks.pop(parent)
            return None
        if not parent and self.questions and not self.inner_asks:
            return self.questions.pop(next(iter(self.questions)))
        if not parent and self.inner_asks:
            self.inner_asks.pop(next(iter(self.inner_asks)))
        return None

    MAX_ROUTES = 10_000  # comm messages get no reply; forget the oldest routes

    def _route(self, msg_id: str, req: _Request) -> None:
        self.routes[msg_id] = req
        while len(self.routes) > self.MAX_ROUTES:
            del self.routes[next(iter(self.routes))]

    def _next_cell(self) -> None:
        if self.current is not None or not self.pending:
            return
        req = self.current = self.pending.popleft()
        content = json.loads(req.frames[3])
        # A cell is a request that counts (In[N]); silent or unrecorded
        # requests (a frontend's own) get no cell and no audit display.
        cell: int | None = None
        if content.get("store_history", True) and not content.get("silent", False):
            self.count += 1
            cell = self.cells[req.header["msg_id"]] = self.count
            while len(self.cells) > self.MAX_ROUTES:
                del self.cells[next(iter(self.cells))]
        metadata = json.loads(req.frames[2])
        cell_id = metadata.get("cellId") or metadata.get("cell_id")
        self.on_cell(cell, cell_id if isinstance(cell_id, str) else None)
        self.inn["shell"].send_multipart(self._signed(self.inner_session, req.frames))

    # kernel -> frontend
    def _from_kernel(self, ch: str) -> None:
        """Only what a kernel sends on ``ch`` goes out: on shell and control
        the reply to a request the frontend made there, on stdin an
        input_request of a running request. Anything else (an input_reply
        a cell forged on its own stdin socket, a second reply) is dropped."""
        split = self._split(self.inner_session, self.inn[ch].recv_multipart())
        if split is None:
            return
        _, frames = split
        decoded = _decoded(frames)
        if decoded is None:
            return
        header, parent, content = decoded
        msg_type = str(header.get("msg_type", ""))
        req = self.routes.get(str(parent.get("msg_id")))
        if req is None:
            return
        if ch == "stdin":
            if msg_type != "input_request" or req.channel != "shell":
                return
            self.inner_asks[header["msg_id"]] = True
        elif req.channel != ch or msg_type != req.header.get("msg_type", "").replace(
            "_request", "_reply"
        ):
            return
        if ch != "stdin":
            screened, refused = screen_reply(msg_type, content)
            frames = self._screened(frames, content, screened, refused, req.header["msg_id"])
        self.out[ch].send_multipart([*req.idents, *self._signed(self.outer_session, frames)])
        if ch != "stdin":
            self.routes.pop(req.header["msg_id"], None)
            if req.header["msg_id"] in self.cells:
                self.replied.add(req.header["msg_id"])
                held = self.held_idle.pop(req.header["msg_id"], None)
                if held is not None:
                    topics, idle, parent = held
                    self.replied.discard(req.header["msg_id"])
                    self._end_of_cell(parent)
                    out = [*topics, *self._signed(self.outer_session, idle)]
                    self.out["iopub"].send_multipart(out)
            if req is self.current:
                self.current = None
                self._next_cell()

    def _iopub(self) -> None:
        msg = self.inn["iopub"].recv_multipart()
        split = self._split(self.inner_session, msg)
        if split is None:
            return
        topics, frames = split
        decoded = _decoded(frames)
        if decoded is None:
            return
        header, parent, content = decoded
        if (
            header.get("msg_type") == "status"
            and content.get("execution_state") == "idle"
            and parent.get("msg_type") == "execute_request"
        ):
            msg_id = str(parent.get("msg_id"))
            if msg_id in self.cells and msg_id not in self.replied:
                # Held until the cell's reply has gone out: iopub and shell
                # are separate sockets, so the idle may overtake the reply,
                # and an idle the cell forged must not end its audit early.
                self.held_idle.setdefault(msg_id, (topics, frames, parent))
                return
            self.replied.discard(msg_id)
            self._end_of_cell(parent)
        # A refusal belongs to the cell whose request the message answers: with
        # Run All the next cell starts as soon as this one's reply went out.
        asked = str(parent.get("msg_id"))
        screened, refused = screen_iopub(str(header.get("msg_type", "")), content)
        if screened is None:
            self._refused(refused, asked)
            return
        frames = self._screened(frames, content, screened, refused, asked)
        self.out["iopub"].send_multipart([*topics, *self._signed(self.outer_session, frames)])

    def _screened(
        self,
        frames: list[bytes],
        sent: dict[str, Any],
        content: dict[str, Any],
        refused: list[Refused],
        asked: str,
    ) -> list[bytes]:
        """``frames`` with ``content`` in place of what the kernel ``sent``,
        when the screen changed it (buffers go too: no shown output uses them)."""
        self._refused(refused, asked)
        if content is sent:
            return frames
        return [*frames[:3], json.dumps(content, allow_nan=False).encode()]

    def _refused(self, refused: list[Refused], asked: str) -> None:
        """Tell ``refused`` once per cell; ``asked``: the request's msg_id."""
        cell = self.cells.get(asked)
        for r in refused:
            if (cell, r) not in self.refused:
                self.refused.add((cell, r))
                self.on_refused(r, cell)
        while len(self.refused) > self.MAX_ROUTES:
            self.refused.pop()

    def _end_of_cell(self, parent: dict[str, Any]) -> None:
        """Publish the audit of the cell whose request is ``parent``."""
        count = self.cells.pop(str(parent.get("msg_id")), None)
        if count is None:  # not a cell (silent), or its idle came twice
            return
        self._update_earlier(parent)
        if self.note is not None:
            note = html.escape(self.note)
            data = {"text/plain": self.note, "text/html": f"<p><b>{note}</b></p>"}
            self._publish("display_data", data, parent)
        audit = self.audit_for(count)
        if audit is not None:
            bundle, size = audit
            self._publish("display_data", bundle, parent, self._display_id(count))
            self.shown[count] = size
        else:
            self.shown[count] = self.audit_size(count)
            self.quiet.add(count)
        while len(self.shown) > self.SHOWN_KEPT:
            self.quiet.discard(oldest := next(iter(self.shown)))
            del self.shown[oldest]

    # An earlier cell's display is updated with events that came after it
    # was shown (a process it left running; a cell whose kernel ended it
    # early): nothing of a cell stays out of its own audit.
    SHOWN_KEPT = 50

    def _update_earlier(self, parent: dict[str, Any]) -> None:
        for count, size in list(self.shown.items()):
            audit = self.audit_for(count) if self.audit_size(count) != size else None
            if audit is not None:
                bundle, self.shown[count] = audit
                if count in self.quiet:  # never shown: its output area is closed
                    self.quiet.discard(count)
                    self._publish("display_data", bundle, parent, self._display_id(count))
                else:
                    self._publish("update_display_data", bundle, parent, self._display_id(count))

    def _display_id(self, count: int) -> str:
        return f"agentsh-audit-{self.outer_session.session}-{count}"

    def _publish(
        self, msg_type: str, data: dict[str, Any], parent: dict[str, Any], display_id: str = ""
    ) -> None:
        transient = {"display_id": display_id} if display_id else {}
        content = {"data": data, "metadata": {}, "transient": transient}
        msg = self.outer_session.msg(msg_type, content, parent)
        self.outer_session.send(self.out["iopub"], msg, [msg_type.encode()])
