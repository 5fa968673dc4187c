"""The IPython extension: ``%%agentsh``, ``%agentsh`` and the per-cell audit.

``%load_ext agentsh_ipy`` installs the launch hooks of :mod:`._hooks` (they
pass everything through until sandboxing is active) and registers
:class:`AgentshMagics`. While a ``%%agentsh`` cell runs, or between
``%agentsh on`` and ``%agentsh off``, every process started by the process
(on any thread) is launched through the supervisor daemon, one per IPython
session, started on first use and stopped at unload or exit. A thread the
cell started that is still launching programs after the cell ended is no
longer sandboxed (IPython's own long-lived threads, such as the script
magics' event loop, make "threads a cell started" impossible to tell from
the shell's machinery).

A ``%%agentsh`` cell asking for another policy or workspace than the running
daemon's gets a new daemon: the old one is closed first, which kills any
sandboxed process still running from an earlier cell.

This is a net for the programs a cell starts, not a confinement of the
kernel: Python code in the kernel itself can reach the unhooked system calls.
The sandboxed kernel confines everything.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import html
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Enum, Float, Unicode, default

from . import _hooks
from . import audit as aud
from .kernel import KERNEL_AUDIT_ENV, KERNEL_POLICY_ENV, KERNEL_SESSION_ENV

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

    from .supervisor._client import SandboxClient, Wrapped

NO_APPROVER = "denied: no approver available (the frontend does not accept input)"
_DISPLAY_MODES = ("summary", "full", "none")


def _supervisor() -> Any:
    """The supervisor package, imported on first use (it needs Linux)."""
    from . import supervisor

    return supervisor


def _kernel_connection_file() -> list[str]:
    """The connection file of the kernel this shell runs in, if any: its key
    signs code for the kernel to run, outside the sandbox."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    app = getattr(kernelapp, "IPKernelApp", None)
    if app is None or not app.initialized():
        return []
    path = getattr(app.instance(), "abs_connection_file", "")
    return [path] if isinstance(path, str) and os.path.isabs(path) else []


def _client_api() -> tuple[Any, type[Exception]]:
    """(SandboxClient, SupervisorError)."""
    sup = _supervisor()
    return sup.SandboxClient, sup.SupervisorError


def _default_timeouts() -> Any:
    return _supervisor().Timeouts()


def enforcement() -> tuple[bool, str]:
    """(enforcing, what the sandbox uses or why it cannot), as
    ``agentsh-ipy detect`` decides it."""
    if not sys.platform.startswith("linux"):
        return False, f"enforcement needs Linux (this is {sys.platform})"
    use = _supervisor().host_choice()
    if use["mode"] == "ptrace":  # the daemon attaches notify-mode launches only
        return False, (
            f"the notebook sandbox needs seccomp user-notify; this host offers only "
            f"{use['summary']} (agentsh-ipy exec --mode ptrace works here)"
        )
    if use["mechanism"] and use["mechanism"]["sockets"] != "fd-copy":
        return False, (  # the daemon has no traced-sockets stand-in (issue 19)
            f"the notebook sandbox needs pidfd_getfd; this host offers {use['summary']} "
            "(agentsh-ipy exec and the sandboxed kernel work here)"
        )
    return bool(use["enforcing"]), str(use["summary"])


def detect_report() -> str:
    """The text of ``agentsh-ipy detect``."""
    if not sys.platform.startswith("linux"):
        return f"sandbox: unavailable (enforcement needs Linux; this is {sys.platform})"
    return str(_supervisor().describe_host()[0])


@dataclass(frozen=True)
class _Key:
    """What a daemon was started with; another key needs another daemon."""

    policy: str | None
    workspace: str


@dataclass
class _Cell:
    """The cell a launch belongs to."""

    count: int | None
    cell_id: str | None
    launches: list[str]
    shown: bool = False  # its audit was displayed


@dataclass
class _Begun:
    """A %%agentsh cell between its start and its end."""

    cell: _Cell
    mode: str
    refusal: str | None  # why it runs unsandboxed (--allow-unsandboxed)
    saved_key: _Key | None
    whole_kernel: bool = False  # in the sandboxed kernel: nothing to do


_CELL_MAGIC = re.compile(r"%%agentsh(?:[ \t]|$)")


def agentsh_cell_transform(lines: list[str]) -> list[str]:
    """Rewrite a ``%%agentsh ARGS`` cell into ``%agentsh begin-cell ARGS``
    followed by its body, so the body runs as the cell itself (top-level
    await, its result and its traceback stay the cell's own); the cell ends
    at post_run_cell. A body starting with another cell magic becomes the
    call IPython would make for it."""
    if not lines or not _CELL_MAGIC.match(lines[0]):
        return lines
    args = lines[0][len("%%agentsh") :].strip()
    first = f"get_ipython().run_line_magic('agentsh', {('begin-cell ' + args).strip()!r})\n"
    body = lines[1:]
    if body and body[0].startswith("%%"):
        name, _, rest = body[0][2:].rstrip().partition(" ")
        call = f"get_ipython().run_cell_magic({name!r}, {rest!r}, {''.join(body[1:])!r})\n"
        return [first, call]
    return [first, *body]


class _CellParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"%%agentsh: {message}")


def _cell_parser() -> argparse.ArgumentParser:
    p = _CellParser(prog="%%agentsh", add_help=False)
    p.add_argument("--policy", metavar="FILE")
    p.add_argument("--workspace", metavar="DIR")
    p.add_argument("--display", choices=_DISPLAY_MODES)
    p.add_argument("--allow-unsandboxed", action="store_true")
    return p


@magics_class
class AgentshMagics(Magics):
    """Run a cell's processes in the agentsh sandbox and show what they did.

    ``%%agentsh [--policy FILE] [--workspace DIR] [--display summary|full|none]
    [--allow-unsandboxed]`` runs the cell sandboxed, then shows its audit.

    ``%agentsh on|off`` sandboxes every following cell (until off);
    ``%agentsh status|policy|detect``; ``%agentsh audit [N]`` shows the audit
    of execution N again; ``%agentsh log [PATH]`` sets (or shows) where the
    next daemon writes its JSON Lines audit.
    """

    policy = Unicode(
        None, allow_none=True, help="Policy file (None: the built-in default policy)."
    ).tag(config=True)
    workspace = Unicode(
        None, allow_none=True, help="The read-write workspace (None: the cwd at first use)."
    ).tag(config=True)
    display = Enum(
        _DISPLAY_MODES,
        default_value="summary",
        help="Per-cell audit. summary: the counts, every denial, the allowed operations "
        "folded, and where the full list is in the JSON Lines log (the notebook keeps "
        "these and the denied events only); full: the same and every event, folded, kept "
        "in the notebook; none: nothing.",
    ).tag(config=True)
    audit_dir = Unicode(
        None,
        allow_none=True,
        help="Directory of the JSON Lines audit files "
        "(None: ~/.local/state/agentsh-ipy/audit/, or $XDG_STATE_HOME).",
    ).tag(config=True)
    handoff_timeout = Float(help="Seconds to wait for the sandbox's listener fd.").tag(config=True)
    ready_timeout = Float(help="Seconds to wait for the sandbox's READY.").tag(config=True)
    go_timeout = Float(help="Seconds the sandboxed side waits for GO.").tag(config=True)

    @default("handoff_timeout")
    def _default_handoff(self) -> float:
        return float(_default_timeouts().handoff)

    @default("ready_timeout")
    def _default_ready(self) -> float:
        return float(_default_timeouts().ready)

    @default("go_timeout")
    def _default_go(self) -> float:
        return float(_default_timeouts().go)

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell=shell)
        self._lock = threading.RLock()
        self._store = aud.EventStore()
        self._hooks = _hooks.Hooks(self)
        self._client: SandboxClient | None = None
        self._client_key: _Key | None = None
        self._first_workspace: str | None = None
        self._log_path: str | None = None
        self._on = False
        self._cell_key: _Key | None = None  # a %%agentsh cell's own key while it runs
        self._depth = 0  # %%agentsh cells running
        self._unsandboxed = 0  # ... of them running with --allow-unsandboxed, unenforced
        self._body = 0  # nested run_cell of a %%agentsh body (its events are not cells)
        self._begun: _Begun | None = None  # the %%agentsh cell running now
        self._cell = _Cell(None, None, [])
        self._ask_ctx: tuple[Any, Any, Any] | None = None  # (kernel, ident, parent)
        self._ask_lock = threading.Lock()
        self._pending_ask: threading.Thread | None = None
        self._enforcement: tuple[bool, str] | None = None
        self._closed = False
        # Seams for the tests: how a client is started, how enforcement is found.
        self.start_client: Callable[..., Any] = self._start_real_client
        self.find_enforcement: Callable[[], tuple[bool, str]] = enforcement

    # -- extension lifecycle ------------------------------------------------

    def install(self) -> None:
        shell = self.shell
        assert shell is not None
        self._hooks.install()
        shell.input_transformers_cleanup.append(agentsh_cell_transform)
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)
        atexit.register(self.close_client)

    def uninstall(self) -> None:
        """Undo :meth:`install` and the registration; stop the daemon."""
        shell = self.shell
        assert shell is not None
        self._closed = True
        self._on = False
        self._hooks.uninstall()
        transforms = shell.input_transformers_cleanup
        while agentsh_cell_transform in transforms:
            transforms.remove(agentsh_cell_transform)
        for name, cb in (
            ("pre_run_cell", self._pre_run_cell),
            ("post_run_cell", self._post_run_cell),
        ):
            with contextlib.suppress(ValueError):  # not registered (any more)
                shell.events.unregister(name, cb)
        atexit.unregister(self.close_client)
        self.close_client()
        mm = shell.magics_manager
        for kind in ("line", "cell"):
            table = mm.magics[kind]
            mine = self.magics[kind].get("agentsh")
            if mine is not None and table.get("agentsh") == mine:
                del table["agentsh"]
        if mm.registry.get(type(self).__name__) is self:
            del mm.registry[type(self).__name__]
        configurables: list[Any] = shell.configurables
        if self in configurables:
            configurables.remove(self)

    def close_client(self) -> None:
        with self._lock:
            client, self._client, self._client_key = self._client, None, None
        if client is not None:
            with _hooks.bypass():
                client.close()

    # -- the router the hooks ask ------------------------------------------

    def sandboxing(self) -> bool:
        if self._closed:
            return False
        return bool(self._depth or self._on) and not self._unsandboxed

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None,
        env: Mapping[str, str] | None,
        cwd: str | None,
        inline: bool = False,
    ) -> Wrapped:
        cell = self._cell
        client = self._current_client()
        wrapped: Wrapped = client.wrap(
            argv,
            executable=executable,
            env=env,
            cwd=cwd,
            cell=cell.count,
            cell_id=cell.cell_id,
            inline=inline,
        )
        with self._lock:
            cell.launches.append(wrapped.launch)
        return wrapped

    def forget(self, launch: str) -> None:
        # The launch stays in its cell: a Popen that failed may have run
        # sandboxed code first (a preexec_fn, an exec the policy denied).
        with self._lock:
            client = self._client
        if client is not None:
            client.forget(launch)

    # -- the daemon ----------------------------------------------------------

    def _wanted_key(self, policy: str | None = None, workspace: str | None = None) -> _Key:
        policy = policy if policy is not None else self.policy
        if workspace is None:
            workspace = self.workspace
        if workspace is None:
            if self._first_workspace is None:
                self._first_workspace = os.getcwd()
            workspace = self._first_workspace
        return _Key(
            os.path.abspath(os.path.expanduser(policy)) if policy is not None else None,
            os.path.abspath(os.path.expanduser(workspace)),
        )

    def _next_audit_path(self, session: str) -> str:
        if self._log_path is not None:
            return self._log_path
        if self.audit_dir is not None:
            return os.path.join(os.path.abspath(os.path.expanduser(self.audit_dir)),
                                f"{session}.jsonl")  # fmt: skip
        return str(_supervisor().default_audit_path(session))

    def _start_real_client(self, **kwargs: Any) -> Any:
        client_cls, _ = _client_api()
        return client_cls.start(**kwargs)

    def _ensure_client(self, key: _Key) -> SandboxClient:
        """The daemon for ``key``, started (or restarted) now if needed.
        Raises SupervisorError / PolicyError naming the cause."""
        with self._lock:
            client = self._client
            if client is not None and (self._client_key != key or not client.alive):
                self.close_client()
                client = None
            if client is None:
                sup = _supervisor()
                if not os.path.isdir(key.workspace):
                    _, error = _client_api()
                    raise error(f"the workspace {key.workspace} is not a directory")
                timeouts = sup.Timeouts(self.handoff_timeout, self.ready_timeout, self.go_timeout)
                session = sup.new_session_id()
                with _hooks.bypass():
                    client = self.start_client(
                        policy_path=key.policy,
                        workspace=key.workspace,
                        audit_path=self._next_audit_path(session),
                        session=session,
                        on_event=self._store.add,
                        ask=self._ask,
                        timeouts=timeouts,
                        hide=_kernel_connection_file(),
                    )
                self._client, self._client_key = client, key
            assert client is not None
            return client

    def _current_client(self) -> SandboxClient:
        """The daemon for a launch made now: never started or replaced in
        the middle of a cell's launches, except on first use."""
        _, error = _client_api()
        with self._lock:
            client = self._client
            if client is None:
                if self._closed:
                    raise error("agentsh: the extension was unloaded; nothing was run")
                return self._ensure_client(self._cell_key or self._wanted_key())
            if not client.alive:
                raise error(
                    "agentsh: the sandbox daemon is gone (it exited or was killed); nothing "
                    "was run. The next %%agentsh cell (or %agentsh on) starts a new one."
                )
            return client

    def _enforced(self) -> tuple[bool, str]:
        if self._enforcement is None:
            self._enforcement = self.find_enforcement()
        return self._enforcement

    # -- cells ----------------------------------------------------------------

    def _pre_run_cell(self, info: ExecutionInfo) -> None:
        if self._body:
            return
        shell = self.shell
        assert shell is not None
        count = shell.execution_count - 1 if info.store_history else shell.execution_count
        self._cell = _Cell(count, info.cell_id, [])
        self._ask_ctx = self._capture_ask_context()
        self._hooks.install_ipython_system()  # ipykernel may have been imported since
        if self._on:
            try:
                self._ensure_client(self._wanted_key())
            except Exception as e:
                # Launches in this cell will raise with the cause; say it once now.
                print(f"agentsh: the sandbox cannot start: {e}", file=sys.stderr)

    def _post_run_cell(self, result: ExecutionResult) -> None:
        if self._body:
            return
        begun, self._begun = self._begun, None
        if begun is not None:
            self._end(begun)
            return
        cell = self._cell
        if not cell.shown and cell.launches:
            self._show(cell, self.display)

    def _run_body(self, cell_text: str) -> ExecutionResult | None:
        shell: Any = self.shell
        self._body += 1
        try:
            result: ExecutionResult | None = shell.run_cell(cell_text, store_history=False)
        finally:
            self._body -= 1
        return result

    def _begin(self, line: str) -> _Begun:
        """Start sandboxing the current cell, or refuse it (UsageError: the
        cell stops here, before any of its code ran)."""
        opts = _cell_parser().parse_args(shlex.split(line))
        if os.environ.get(KERNEL_SESSION_ENV):
            # In the sandboxed kernel every process is confined and audited
            # already (a second sandbox could not start inside the first):
            # the cell runs as it is, under the kernel's policy and audit.
            # A cell faking this variable skips nothing: it is inside anyway.
            if opts.policy or opts.workspace:
                print("agentsh: this kernel is sandboxed as a whole; the kernel's policy and "
                      "workspace apply, not --policy/--workspace", file=sys.stderr)  # fmt: skip
            return _Begun(self._cell, "none", None, self._cell_key, whole_kernel=True)
        enforced, why = self._enforced()
        refusal: str | None = None
        key: _Key | None = None
        if enforced:
            key = self._wanted_key(opts.policy, opts.workspace)
            try:
                self._ensure_client(key)
            except Exception as e:  # SupervisorError, PolicyError, OSError: all say why
                refusal = f"the sandbox could not start: {e}"
        else:
            refusal = f"the sandbox is unavailable here: {why}"
        if refusal is not None and not opts.allow_unsandboxed:
            raise UsageError(
                f"agentsh: {refusal}. The cell was NOT run. "
                "(%%agentsh --allow-unsandboxed runs it without the sandbox.)"
            )
        begun = _Begun(self._cell, opts.display or self.display, refusal, self._cell_key)
        with self._lock:
            self._depth += 1
            if refusal is not None:
                self._unsandboxed += 1
            else:
                self._cell_key = key
        return begun

    def _end(self, begun: _Begun) -> None:
        if begun.whole_kernel:
            return  # the kernel shows the cell's audit
        with self._lock:
            self._depth -= 1
            if begun.refusal is not None:
                self._unsandboxed -= 1
            else:
                self._cell_key = begun.saved_key
        if begun.refusal is not None:
            self._show_unsandboxed(begun.refusal)
        else:
            self._show(begun.cell, begun.mode)

    def _begin_cell(self, line: str) -> None:
        """``%agentsh begin-cell ARGS``: the first statement of a ``%%agentsh``
        cell after :func:`agentsh_cell_transform`; ended by post_run_cell."""
        if self._begun is not None:
            raise UsageError("agentsh: begin-cell twice in one cell")
        self._begun = self._begin(line)

    def _cell_magic(self, line: str, cell_text: str) -> None:
        """A direct ``run_cell_magic('agentsh', ...)`` (a typed ``%%agentsh``
        cell is rewritten by the transformer and never gets here): the body
        runs as a nested cell."""
        shell = self.shell
        assert shell is not None
        begun = self._begin(line)
        outer = getattr(shell.displayhook, "exec_result", None)
        try:
            result = self._run_body(cell_text)
        finally:
            self._end(begun)
        # The body's error is the cell's error (nbclient and papermill stop on
        # it); its traceback was shown already by the nested run.
        if result is not None and outer is not None and not result.success:
            if result.error_before_exec is not None:
                outer.error_in_exec = result.error_before_exec
            else:
                outer.error_in_exec = result.error_in_exec

    # -- display --------------------------------------------------------------

    def _show(self, cell: _Cell, mode: str) -> None:
        cell.shown = True
        if mode == "none":
            return
        with self._lock:
            launches = list(cell.launches)
            client = self._client
        running: list[str] = []
        if client is not None and launches:
            try:
                running = list(client.settle(launches))
            except Exception as e:
                print(f"agentsh: cannot wait for the audit to settle: {e}", file=sys.stderr)
        mine = set(launches)
        events = [e for e in self._store.events(cell.count) if e.get("launch") in mine]
        self._display_bundle(events, cell.count, mode, running, cell.cell_id)

    def _display_bundle(
        self,
        events: list[aud.Event],
        count: int | None,
        mode: str,
        running: Sequence[str] = (),
        cell_id: str | None = None,
    ) -> None:
        display: Any = _ipython_display()
        with self._lock:
            client = self._client
        log = aud.LogRef(
            getattr(client, "audit_path", None),
            cell_id,
            None if count is None else f"%agentsh audit {count}",
        )
        bundle = aud.mimebundle(
            events, cell=count, dropped=self._store.dropped(count), detail=mode == "full", log=log
        )
        if running:
            note = (
                f"agentsh: {len(running)} launch(es) of this cell still running "
                f"({', '.join(running)}); their later events go to the audit log and "
                f"to %agentsh audit {count}"
            )
            bundle["text/plain"] = note + "\n" + bundle["text/plain"]
            bundle["text/html"] = f"<p><em>{html.escape(note)}</em></p>\n" + bundle["text/html"]
        display(bundle, raw=True)

    def _show_unsandboxed(self, why: str) -> None:
        display: Any = _ipython_display()
        text = (
            f"NOT SANDBOXED: this cell ran without the agentsh sandbox "
            f"(--allow-unsandboxed); {why}. No process it started was checked or audited."
        )
        display(
            {
                "text/plain": "!!! " + text,
                "text/html": f"<p><strong>{html.escape(text)}</strong></p>",
            },
            raw=True,
        )

    # -- approvals --------------------------------------------------------------

    def _capture_ask_context(self) -> tuple[Any, Any, Any] | None:
        """The kernel's stdin route for this cell, read on the cell's thread
        (ipykernel keeps the parent request in context variables)."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None or not getattr(kernel, "_allow_stdin", False):
            return None
        try:
            return kernel, kernel._parent_ident["shell"], kernel.get_parent("shell")
        except Exception:
            return None

    def _ask(self, question: str, timeout: float) -> tuple[bool, str]:
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None:
            ctx = self._ask_ctx
            if ctx is None:
                return False, NO_APPROVER
            return self._ask_kernel(ctx, question, timeout)
        if type(self.shell).__module__.startswith("IPython.terminal") and sys.stdin.isatty():
            approver = _supervisor().TerminalApprover.open()
            granted, how = approver.ask(question, timeout)
            return bool(granted), str(how)
        return False, NO_APPROVER

    def _ask_kernel(
        self, ctx: tuple[Any, Any, Any], question: str, timeout: float
    ) -> tuple[bool, str]:
        kernel, ident, parent = ctx
        prompt = f"agentsh: {question}\nallow? [y/N] (denied if no answer within {timeout:g}s) "
        with self._ask_lock:
            pending = self._pending_ask
            if pending is not None and pending.is_alive():
                # Its input_request is still open; a second reader of the
                # kernel's stdin socket would race it.
                return False, "denied: an earlier approval question is still unanswered"
            answer: dict[str, Any] = {}

            def run() -> None:
                try:
                    answer["value"] = kernel._input_request(prompt, ident, parent)
                except BaseException as e:  # EOFError, KeyboardInterrupt: a no
                    answer["error"] = e

            t = threading.Thread(target=run, name="agentsh-approval-input", daemon=True)
            t.start()
            t.join(timeout)
            if t.is_alive():
                self._pending_ask = t
                return False, f"denied: no answer within {timeout:g}s"
        if "error" in answer:
            return False, f"denied: no answer ({type(answer['error']).__name__})"
        granted = str(answer.get("value", "")).strip().lower() in ("y", "yes")
        return granted, "granted in the notebook" if granted else "denied in the notebook"

    # -- the magics ---------------------------------------------------------------

    @line_cell_magic
    def agentsh(self, line: str, cell: str | None = None) -> None:
        """%%agentsh [--policy FILE] [--workspace DIR] [--display summary|full|none]
        [--allow-unsandboxed]: run the cell's processes in the sandbox, then
        show the cell's audit.

        %agentsh on|off|status|policy|detect|audit [N]|log [PATH]
        """
        if cell is not None:
            self._cell_magic(line, cell)
            return
        if line.split(None, 1)[:1] == ["begin-cell"]:
            self._begin_cell(line.partition("begin-cell")[2])
            return
        args = shlex.split(line)
        if not args:
            raise UsageError("%agentsh: on|off|status|policy|detect|audit [N]|log [PATH]")
        cmd, rest = args[0], args[1:]
        handler = {
            "on": self._cmd_on,
            "off": self._cmd_off,
            "status": self._cmd_status,
            "policy": self._cmd_policy,
            "detect": self._cmd_detect,
            "audit": self._cmd_audit,
            "log": self._cmd_log,
        }.get(cmd)
        if handler is None:
            raise UsageError(
                f"%agentsh: unknown command {cmd!r} "
                "(on|off|status|policy|detect|audit [N]|log [PATH])"
            )
        max_args = 1 if cmd in ("audit", "log") else 0
        if len(rest) > max_args:
            raise UsageError(f"%agentsh {cmd}: too many arguments")
        handler(*rest)

    def _cmd_on(self) -> None:
        enforced, why = self._enforced()
        if not enforced:
            raise UsageError(f"agentsh: the sandbox is unavailable here: {why}; still off")
        try:
            client = self._ensure_client(self._wanted_key())
        except Exception as e:
            raise UsageError(f"agentsh: the sandbox could not start: {e}; still off") from None
        self._on = True
        print(
            f"agentsh: on: every process started from now on runs in the sandbox "
            f"(policy {client.policy_name}, audit {client.audit_path}); %agentsh off ends it"
        )

    def _cmd_off(self) -> None:
        self._on = False
        print("agentsh: off: from now on only %%agentsh cells run their processes sandboxed")

    def _cmd_status(self) -> None:
        if os.environ.get(KERNEL_SESSION_ENV):
            print(_whole_kernel_status())
            return
        enforced, why = self._enforced()
        with self._lock:
            client = self._client
        if self._on:
            lines = ["agentsh: every cell's processes run sandboxed (%agentsh on; "
                     "%agentsh off: only %%agentsh cells)"]  # fmt: skip
        else:
            lines = ["agentsh: %%agentsh cells run their processes sandboxed; other cells "
                     "do not (%agentsh on: every cell)"]  # fmt: skip
        if client is None:
            lines.append("daemon: not running (starts on first use)")
            lines.append(f"audit: next daemon writes to {self._describe_next_log()}")
            key = self._wanted_key()
            lines.append(f"policy: {key.policy or 'built-in default'}")
        else:
            pid = getattr(client, "pid", None)
            state = "alive" if client.alive else "GONE"
            lines.append(f"daemon: {state}" + (f", pid {pid}" if pid is not None else ""))
            lines.append(f"session: {client.session}")
            lines.append(f"policy: {client.policy_name} ({client.policy_source})")
            lines.append(f"audit: {client.audit_path}")
            if self._client_key is not None:
                lines.append(f"workspace: {self._client_key.workspace}")
        lines.append(f"mechanism: {why}" if enforced else f"mechanism: UNAVAILABLE: {why}")
        print("\n".join(lines))

    def _describe_next_log(self) -> str:
        if self._log_path is not None:
            return self._log_path
        if self.audit_dir is not None:
            return os.path.join(os.path.abspath(os.path.expanduser(self.audit_dir)),
                                "<session>.jsonl")  # fmt: skip
        return str(_supervisor().default_audit_path("<session>"))

    def _cmd_policy(self) -> None:
        key = self._client_key or self._wanted_key()
        if key.policy is None:
            from . import policy as pol

            print("# the built-in default policy")
            print(pol.default_policy_text(), end="")
            return
        try:
            with open(key.policy, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(
                f"agentsh: cannot read the policy {key.policy}: {e.strerror}"
            ) from None
        print(f"# {key.policy}")
        print(text, end="" if text.endswith("\n") else "\n")

    def _cmd_detect(self) -> None:
        print(detect_report())

    def _cmd_audit(self, n: str | None = None) -> None:
        if os.environ.get(KERNEL_SESSION_ENV):
            # The sandboxed kernel's events are the supervisor's, not this
            # magic's: say where they are rather than "no audited cell".
            log = os.environ.get(KERNEL_AUDIT_ENV) or "LOG"
            print("agentsh: in this kernel the supervisor shows each cell's audit under it; "
                  f"every event of cell N: agentsh-ipy audit {log} --cell N")  # fmt: skip
            return
        if n is None:
            cells = [c for c in self._store.cells() if c is not None]
            if not cells:
                print("agentsh: no audited cell yet")
                return
            count: Any = cells[-1]
        else:
            try:
                count = int(n)
            except ValueError:
                raise UsageError(f"%agentsh audit: {n!r} is not an execution count") from None
        events = self._store.events(count)
        if not events:
            print(f"agentsh: no audit events for execution {count}")
            return
        # Asked for: every event (folded in the HTML).
        self._display_bundle(events, count, "full")

    def _cmd_log(self, path: str | None = None) -> None:
        if path is None:
            with self._lock:
                client = self._client
            if client is not None:
                print(f"agentsh: audit log: {client.audit_path}")
            if self._log_path is not None or client is None:
                print(f"agentsh: next daemon writes to {self._describe_next_log()}")
            return
        self._log_path = os.path.abspath(os.path.expanduser(path))
        print(
            f"agentsh: the next daemon writes its audit to {self._log_path}"
            + (" (the running daemon keeps its own)" if self._client is not None else "")
        )


def _confinement() -> dict[str, str]:
    """Seccomp and NoNewPrivs of this process, as the Linux kernel reports them."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}
    return {k: fields[k].strip() for k in ("Seccomp", "NoNewPrivs") if k in fields}


def _whole_kernel_status() -> str:
    """``%agentsh status`` in the sandboxed kernel. The policy and the log
    are what the supervisor put in the kernel's environment at start; the
    confinement is what the Linux kernel says of this process now."""
    state = _confinement()
    confined = state.get("Seccomp") == "2" and state.get("NoNewPrivs") == "1"
    seen = ", ".join(f"{k} {v}" for k, v in state.items()) or "no /proc/self/status"
    if confined:
        first = ("agentsh: this kernel runs inside the sandbox: its own code and every "
                 f"process it starts are confined ({seen})")  # fmt: skip
    else:
        first = f"agentsh: NOT CONFINED: this process is not under a seccomp filter ({seen})"
    lines = [
        first,
        f"session: {os.environ.get(KERNEL_SESSION_ENV)}",
        f"policy: {os.environ.get(KERNEL_POLICY_ENV) or 'unknown'}",
        f"audit: {os.environ.get(KERNEL_AUDIT_ENV) or 'unknown'} (written by the supervisor, "
        "outside the sandbox; each cell's audit is shown under it)",
        "%%agentsh cells run as they are here: the kernel's policy applies to them",
    ]
    return "\n".join(lines)


def load_ipython_extension(ip: InteractiveShell) -> None:
    """``%load_ext agentsh_ipy``; loading twice is harmless."""
    if AgentshMagics.__name__ in ip.magics_manager.registry:
        return
    magics = AgentshMagics(ip)
    ip.register_magics(magics)
    magics.install()


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """``%unload_ext agentsh_ipy``: every hook restored by identity, the
    magics and events unregistered, the daemon stopped."""
    magics = ip.magics_manager.registry.get(AgentshMagics.__name__)
    if isinstance(magics, AgentshMagics):
        magics.uninstall()


def _ipython_display() -> Any:
    from IPython.display import display

    return display
