"""The supervisor: the only layer that joins policy, audit and _linux.

Public API::

    policy = load_policy(path_or_None, workspace)
    with open_audit(path, session_id) as log:
        result = Session(policy, log).run(["sh", "-c", "..."])
"""

from __future__ import annotations

import os
import pwd
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import audit as aud
from .. import policy as pol
from . import _cache, _protect
from ._approval import Approver, NoApprover, TerminalApprover
from ._launch import EXIT_SETUP, LaunchError, Timeouts
from ._session import Result, Session, exit_status
from ._state import NoStateDir, state_dir
from ._trash import TRASH_DIR, Trash, TrashError
from ._trash import key_candidates as trash_key_candidates

if TYPE_CHECKING:
    from ._client import SandboxClient, SupervisorError, Wrapped


def __getattr__(name: str) -> Any:
    # The notebook side's client loads on first use: ``agentsh-ipy exec``
    # does not need it at start-up.
    if name in ("SandboxClient", "SupervisorError", "Wrapped"):
        from . import _client

        return getattr(_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXIT_SETUP",
    "Approver",
    "LaunchError",
    "NoApprover",
    "NoStateDir",
    "Result",
    "SandboxClient",
    "Session",
    "SupervisorError",
    "TerminalApprover",
    "Timeouts",
    "Trash",
    "TrashError",
    "Wrapped",
    "default_audit_path",
    "describe_host",
    "exit_status",
    "host_choice",
    "jupyter_runtime_dirs",
    "load_policy",
    "new_session_id",
    "open_audit",
    "policy_variables",
    "protected_entries",
    "run",
]


def policy_variables(workspace: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return {
        "WORKSPACE": os.path.realpath(workspace),
        "HOME": os.path.realpath(home),
        "TMPDIR": os.path.realpath(env.get("TMPDIR") or tempfile.gettempdir()),
    }


def jupyter_runtime_dirs(env: Mapping[str, str] | None = None) -> list[str]:
    """Where Jupyter keeps its servers' tokens and its kernels' keys, as
    jupyter_core finds it (without importing it): $JUPYTER_RUNTIME_DIR, else
    the data dir's runtime/ ($JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter,
    else ~/.local/share/jupyter); and always the last one, for a server
    started with another environment."""
    env = os.environ if env is None else env
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    default = os.path.join(home, ".local", "share", "jupyter")
    data = env.get("JUPYTER_DATA_DIR") or (
        os.path.join(env["XDG_DATA_HOME"], "jupyter") if env.get("XDG_DATA_HOME") else default
    )
    found = [env.get("JUPYTER_RUNTIME_DIR") or os.path.join(data, "runtime")]
    found.append(os.path.join(default, "runtime"))
    return list(dict.fromkeys(os.path.realpath(d) for d in found if os.path.isabs(d)))


def protected_entries(home: str, env: Mapping[str, str] | None = None) -> tuple[pol.Protected, ...]:
    """The built-in protected set on this host (policy/_protected.py), for
    the home directory ``home`` (the policy's ${HOME})."""
    return _protect.entries(home, env)


def load_policy(path: str | None, workspace: str, protect: tuple[str, ...] = ()) -> pol.Policy:
    """Read and validate a policy (the default when path is None); the
    built-in protected set (policy/_protected.py) less what the policy opens
    under ``unprotect``, the paths in ``protect`` (the audit log, the policy
    file) and the workspace's trash folder become unwritable by the sandbox,
    and Jupyter's runtime directory unreadable, whatever the policy says."""
    variables = policy_variables(workspace)
    if path is None:
        p = pol.load_default(variables)
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise pol.PolicyError([(path, 0, f"cannot read the policy: {e.strerror}")]) from None
        except UnicodeDecodeError as e:
            raise pol.PolicyError([(path, 0, f"not UTF-8 text: {e.reason}")]) from None
        p = pol.Policy.parse(text, path, variables)
        protect = (*protect, os.path.realpath(path))
    trash = os.path.join(os.path.realpath(workspace), TRASH_DIR)
    # What something outside runs later: before the policy's own rules.
    p = p.with_protected(protected_entries(variables["HOME"]))
    p = p.allow_tree(_cache.RULE, _cache.cache_home(), "the sandbox's own cache home")
    p = p.hide([], jupyter_runtime_dirs(), "Jupyter's runtime files hold its tokens and keys")
    # the key that signs trash entries: a sandbox holding it could forge one
    # that the user's `trash restore` would write anywhere
    p = p.hide(trash_key_candidates(), (), "the trash's signing key")
    return p.protect([os.path.realpath(x) for x in protect], trees=[trash])


def run(
    policy: pol.Policy,
    log: aud.AuditLog,
    argv: Sequence[str],
    *,
    mode: str = "auto",
    accept_weaker: Collection[str] = (),
    **session: Any,
) -> Result:
    """Run argv in a sandbox session. ``mode`` auto uses seccomp user-notify
    when this host has every facility it relies on, else ptrace mode, else
    refuses (125); notify refuses likewise unless ``accept_weaker`` names the
    weaker guarantee that stands in for what is missing (_mechanism.WEAKER).
    A listener refused at launch still falls back to ptrace mode in auto: the
    wrapper reports that before anything ran, so the retry is safe."""
    if mode not in ("auto", "notify", "ptrace"):
        raise ValueError(f"mode {mode!r} is not auto, notify or ptrace")
    from .._linux import detect
    from ._mechanism import CHOICE_PROBES, check_accepted, choose

    accept = check_accepted(accept_weaker)
    use_mode, weaker, mechanism = mode, [], None
    if mode != "ptrace":
        use = choose(detect.probe_host(only=CHOICE_PROBES), mode, accept)
        if not use["enforcing"]:
            log.emit("sandbox", op="refused", argv=list(argv), mode=mode, reason=use["summary"])
            return Result(EXIT_SETUP, f"sandbox refused: {use['summary']}")
        use_mode, weaker, mechanism = use["mode"], use["weaker"], use["mechanism"]
    chosen = Session(policy, log, mode=use_mode, weaker=weaker, mechanism=mechanism, **session)
    result = chosen.run(argv)
    if mode == "auto" and use_mode == "notify" and result.notify_unavailable:
        log.emit("sandbox", op="fallback", mode="ptrace", reason=result.error)
        result = Session(policy, log, mode="ptrace", **session).run(argv)
    return result


def describe_host() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """What this host supports and what the sandbox uses: (the report as
    text, the choice of _mechanism.choose, the probed facts as a dict)."""
    from .._linux import detect
    from . import _fast
    from ._mechanism import choose

    facts = detect.probe_host()
    use = choose(facts)
    lines = [f"kernel {facts.kernel} ({facts.machine})"]
    lines += [
        f"  {'yes' if p.available else 'no ':3}  {p.name:22} {p.detail}" for p in facts.probes
    ]
    lines.append(f"sandbox: {use['summary']}")
    use["fast_path"] = _fast.status()
    lines.append(f"fast path (file rules in C): {use['fast_path']}")
    return "\n".join(lines), use, facts.to_dict()


def host_choice() -> dict[str, Any]:
    """What the sandbox uses here (the choice of describe_host), probing only
    the mechanisms that choice depends on: about half the probes' time,
    which the sandboxed kernel and the magic's daemon pay at every start."""
    from .._linux import detect
    from ._mechanism import CHOICE_PROBES, choose

    return choose(detect.probe_host(only=CHOICE_PROBES))


def harden_supervisor_process() -> None:
    """Make this process non-dumpable: its /proc files become root's and
    ptrace/process_vm_readv of it are refused to a same-uid sandbox."""
    from .._linux import _syscall

    _syscall.prctl(_syscall.PR_SET_DUMPABLE, 0)


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(4).hex()


def default_audit_path(session: str) -> str:
    return os.path.join(state_dir(), "audit", f"{session}.jsonl")


def open_audit(path: str, session: str) -> aud.AuditLog:
    """An audit log appending to ``path`` (created 0600, parents 0700)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    stream = os.fdopen(fd, "a", encoding="utf-8")
    return aud.AuditLog(stream, session, time.time)
