"""agentsh-ipy: the command line.

Exit statuses of ``exec``: the command's own (128+N when killed by signal
N); 125 when the sandbox cannot be set up (the command did not run); 126
when the command cannot be executed or its exec is denied; 127 when it is
not found. Sandbox diagnostics are one line on stderr, prefixed
``agentsh-ipy:``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

EXIT_USAGE = 2
EXIT_SETUP = 125


def _err(msg: str) -> None:
    print(f"agentsh-ipy: {msg}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentsh-ipy", description="Sandboxed execution with policy and audit."
    )
    sub = p.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("exec", help="run a command in the sandbox")
    ex.add_argument("--policy", metavar="FILE", help="policy file (default: the built-in policy)")
    ex.add_argument(
        "--workspace", metavar="DIR", default=".", help="the read-write workspace (default: .)"
    )
    ex.add_argument(
        "--audit",
        metavar="FILE",
        help="append the audit (JSON Lines) here (default: agentsh-ipy/audit/ under "
        "$XDG_STATE_HOME or ~/.local/state, else under the temp dir: README, Audit)",
    )
    ex.add_argument(
        "--report", action="store_true", help="print the audit table on stderr at the end"
    )
    ex.add_argument(
        "--mode",
        choices=("auto", "notify", "ptrace"),
        default="auto",
        help="how trapped calls reach the supervisor: seccomp user-notify, or ptrace where "
        "user-notify is unavailable (auto: notify when the host has all it relies on, "
        "else ptrace, else refuse with 125)",
    )
    ex.add_argument(
        "--accept-weaker",
        action="append",
        default=[],
        # the names of supervisor._mechanism.WEAKER (not imported: start-up time)
        choices=("opens-continue",),
        metavar="GUARANTEE",
        help="run notify mode without a guarantee this host cannot keep, named in the audit's "
        "start event; opens-continue: allowed opens continue in the kernel, so a thread racing "
        "the decision can swap the path (when unshare(CLONE_FS), openat2 or NOTIF_ADDFD is "
        "missing). Auto still prefers ptrace mode, which keeps it",
    )
    ex.add_argument("--handoff-timeout", type=float, default=10.0, metavar="S")
    ex.add_argument("--ready-timeout", type=float, default=30.0, metavar="S")
    ex.add_argument("--go-timeout", type=float, default=30.0, metavar="S")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")

    pol = sub.add_parser("policy", help="check or show a policy")
    psub = pol.add_subparsers(dest="policy_command", required=True)
    chk = psub.add_parser("check", help="validate a policy file")
    chk.add_argument("file")
    chk.add_argument("--workspace", metavar="DIR", default=".")
    shw = psub.add_parser("show", help="print the default policy, or an example policy")
    shw.add_argument(
        "--example",
        metavar="NAME",
        choices=["pypi"],
        help="print the example NAME instead: pypi (pip install from PyPI by name, via the "
        "sandbox's proxy; nothing else reachable)",
    )
    prot = psub.add_parser(
        "protected",
        help="the paths no sandbox may write here, whatever the policy (unless it opens one)",
    )
    prot.add_argument("--workspace", metavar="DIR", default=".")

    det = sub.add_parser("detect", help="what this host supports and what the sandbox will use")
    det.add_argument("--json", action="store_true")

    au = sub.add_parser(
        "audit",
        help="print an audit file: denials first, the rest folded, then every event",
        description="Print a JSON Lines audit: the counts, every denied or flagged operation, "
        "the allowed ones folded by kind and directory, then a table of every event. A "
        "notebook's audit display names the file and the cell.",
    )
    au.add_argument("file")
    au.add_argument("--cell", metavar="N", help="only the events of cell N (its execution count)")
    au.add_argument("--session", metavar="ID", help="only the events of this session")
    au.add_argument("--summary", action="store_true", help="no table of every event, the rest only")

    rn = sub.add_parser(
        "run",
        help="execute a notebook in the sandboxed kernel, with a per-cell audit summary",
        description="Execute NOTEBOOK headless in the sandboxed kernel (its directory is the "
        "workspace), show each cell's progress and audit summary on stderr, and write the "
        "executed notebook with its audit outputs. Exit status: 0 every cell ran, 1 a cell "
        "failed, 125 the sandbox could not start.",
    )
    rn.add_argument("notebook")
    rn.add_argument(
        "-o",
        "--output",
        metavar="OUT.ipynb",
        help="where to write the executed notebook (default: NAME.agentsh.ipynb beside it)",
    )
    rn.add_argument("--policy", metavar="FILE", help="policy file (default: the built-in policy)")
    rn.add_argument(
        "--audit", metavar="FILE", help="the kernel's JSON Lines audit (default: the usual place)"
    )
    rn.add_argument(
        "--allow-errors", action="store_true", help="run every cell even when one fails; exit 0"
    )
    rn.add_argument("--timeout", type=float, metavar="S", help="seconds per cell (default: none)")

    kn = sub.add_parser("kernel", help="the sandboxed Jupyter kernel's kernelspec")
    ksub = kn.add_subparsers(dest="kernel_command", required=True)
    ki = ksub.add_parser(
        "install",
        help="install a kernelspec for the sandboxed kernel",
        description="Install a kernelspec running the sandboxed kernel with this Python "
        "(pip install already installs one named 'agentsh' with the built-in policy). "
        "Default location: the system-wide Jupyter directory.",
    )
    where = ki.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="in the user's Jupyter directory")
    where.add_argument(
        "--sys-prefix", action="store_true", help="in this Python environment (sys.prefix)"
    )
    where.add_argument("--prefix", metavar="P", help="in P/share/jupyter/kernels")
    ki.add_argument("--name", default="agentsh", help="kernelspec name (default: agentsh)")
    ki.add_argument("--display-name", metavar="D", help="the name Jupyter shows")
    ki.add_argument(
        "--policy", metavar="FILE", help="the kernel's policy (default: the built-in policy)"
    )
    ksub.add_parser("list", help="the kernelspecs Jupyter finds that run the sandboxed kernel")

    tr = sub.add_parser("trash", help="files a soft_delete rule kept")
    tsub = tr.add_subparsers(dest="trash_command", required=True)
    tl = tsub.add_parser("list", help="list the trash of a workspace")
    tl.add_argument("--workspace", metavar="DIR", default=".")
    trs = tsub.add_parser(
        "restore",
        help="move an entry back where it was, if agentsh-ipy recorded it and the policy"
        " lets the sandbox create it there",
    )
    trs.add_argument("id")
    trs.add_argument("--workspace", metavar="DIR", default=".")
    trs.add_argument(
        "--policy", metavar="FILE", help="the policy to check against (default: the built-in)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "exec":
        return _exec(args)
    if args.command == "policy":
        return _policy(args)
    if args.command == "detect":
        return _detect(args)
    if args.command == "trash":
        return _trash(args)
    if args.command == "kernel":
        return _kernel(args)
    if args.command == "run":
        return _run(args)
    return _audit(args)


def _exec(args: argparse.Namespace) -> int:
    cmd = list(args.argv)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        _err("exec: no command given (usage: agentsh-ipy exec [OPTIONS] -- CMD [ARG...])")
        return EXIT_USAGE
    if not sys.platform.startswith("linux"):
        _err(
            f"sandbox unavailable: enforcement needs Linux (this is {sys.platform}); "
            f"not running {cmd[0]}"
        )
        return EXIT_SETUP
    from . import audit as aud
    from . import policy as pol
    from . import supervisor as sup

    if not os.path.isdir(args.workspace):
        _err(f"workspace {args.workspace!r} is not a directory; not running {cmd[0]}")
        return EXIT_SETUP
    session = sup.new_session_id()
    try:
        audit_path = os.path.abspath(args.audit or sup.default_audit_path(session))
        policy = sup.load_policy(args.policy, args.workspace, protect=(audit_path,))
    except pol.PolicyError as e:
        for line in str(e).splitlines():
            _err(f"policy error: {line}")
        return EXIT_SETUP
    except sup.NoStateDir as e:
        _err(f"{e.strerror}; not running {cmd[0]}")
        return EXIT_SETUP
    try:
        log = sup.open_audit(audit_path, session)
    except OSError as e:
        _err(f"cannot open the audit log {audit_path}: {e.strerror}; not running {cmd[0]}")
        return EXIT_SETUP
    events: list[aud.Event] = []
    if args.report:
        log.subscribe(events.append)
    timeouts = sup.Timeouts(args.handoff_timeout, args.ready_timeout, args.go_timeout)
    sup.harden_supervisor_process()
    approver = sup.TerminalApprover.open()
    try:
        result = sup.run(
            policy, log, cmd, mode=args.mode, timeouts=timeouts, approver=approver,
            workspace=args.workspace, accept_weaker=args.accept_weaker,
        )  # fmt: skip
    except OSError as e:
        _err(f"sandbox setup failed: {e}; {cmd[0]} did not run")
        return EXIT_SETUP
    finally:
        log.close()
    if result.error:
        _err(result.error)
    if args.report:
        print(aud.render_text(events), file=sys.stderr)
        print(f"agentsh-ipy: audit written to {audit_path}", file=sys.stderr)
    return result.status


def _policy(args: argparse.Namespace) -> int:
    from . import policy as pol
    from . import supervisor as sup

    if args.policy_command == "show":
        if args.example:
            sys.stdout.write(pol.example_policy_text(args.example))
            return 0
        sys.stdout.write(pol.default_policy_text())
        return 0
    if args.policy_command == "protected":
        home = sup.policy_variables(args.workspace)["HOME"]
        print(pol.describe_protected(sup.protected_entries(home)))
        return 0
    try:
        p = sup.load_policy(args.file, args.workspace)
    except pol.PolicyError as e:
        for line in str(e).splitlines():
            _err(f"policy error: {line}")
        return 1
    print(f"{args.file}: ok (policy {p.name!r})")
    for u in p.unprotect:
        print(f"  opens protected entry {u.name}: {u.reason}")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from .supervisor import describe_host

    text, use, facts = describe_host()
    print(json.dumps({**facts, "sandbox": use}, indent=2) if args.json else text)
    return 0 if use["enforcing"] else 1


def _run(args: argparse.Namespace) -> int:
    from . import run as rn

    if not os.path.isfile(args.notebook):
        _err(f"run: no notebook {args.notebook}")
        return EXIT_USAGE
    if args.timeout is not None and args.timeout <= 0:
        _err("run: --timeout must be positive")
        return EXIT_USAGE
    policy = None
    if args.policy is not None:
        from . import policy as pol
        from . import supervisor as sup

        workspace = os.path.dirname(os.path.abspath(args.notebook))
        try:
            sup.load_policy(args.policy, workspace)
        except pol.PolicyError as e:
            for line in str(e).splitlines():
                _err(f"policy error: {line}")
            return EXIT_SETUP
        policy = os.path.abspath(args.policy)
    report = rn.run_notebook(
        args.notebook,
        args.output,
        policy=policy,
        audit=None if args.audit is None else os.path.abspath(args.audit),
        allow_errors=args.allow_errors,
        timeout=args.timeout,
    )
    if report.cells:
        print("\n" + rn.summary_table(report.cells), file=sys.stderr)
    if report.error:
        for line in report.error.splitlines():
            _err(line)
    if report.output is not None:
        print(f"agentsh-ipy: executed notebook written to {report.output}", file=sys.stderr)
    return report.status


def _kernel(args: argparse.Namespace) -> int:
    from . import kernelspec as ks

    if args.kernel_command == "list":
        for name, path, spec in ks.installed():
            argv = spec.get("argv") or []
            policy = argv[argv.index("--policy") + 1] if "--policy" in argv[:-1] else "built-in"
            print(f"{name}  {path}  (policy: {policy})")
        return 0
    policy = None
    if args.policy is not None:
        from . import policy as pol

        try:
            policy = ks.validate_policy(args.policy)
        except pol.PolicyError as e:
            for line in str(e).splitlines():
                _err(f"policy error: {line}")
            return 1
    try:
        done = ks.install(
            user=args.user,
            sys_prefix=args.sys_prefix,
            prefix=args.prefix,
            name=args.name,
            display_name=args.display_name,
            policy=policy,
        )
    except ks.InstallError as e:
        _err(f"kernel install: {e}")
        return 1
    print(f"installed kernelspec {done.name} in {done.path}")
    return 0


def _trash(args: argparse.Namespace) -> int:
    from . import policy as pol
    from . import supervisor as sup

    trash = sup.Trash(args.workspace)
    if args.trash_command == "list":
        for e in trash.entries():
            mark = "" if e.signed else "  (not recorded by agentsh-ipy: will not be restored)"
            print(f"{e.id}  {e.original}{mark}")
        return 0
    try:
        policy = sup.load_policy(args.policy, os.path.realpath(args.workspace))
    except pol.PolicyError as e:
        _err(f"policy error:\n{e}")
        return 1
    try:
        original = trash.restore(args.id, policy)
    except (OSError, ValueError) as e:
        _err(f"cannot restore {args.id}: {e.strerror if isinstance(e, OSError) else e}")
        return 1
    print(f"restored {original}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from . import audit as aud

    try:
        with open(args.file, encoding="utf-8") as f:
            events = aud.parse_jsonl(f.read())
    except (OSError, ValueError) as e:
        _err(f"cannot read audit {args.file}: {e}")
        return 1
    if args.session is not None:
        events = [e for e in events if e.get("session") == args.session]
    cell: int | str | None = None
    if args.cell is not None:
        cell = int(args.cell) if args.cell.isdigit() else args.cell
        events = [e for e in events if e.get("cell") == cell]
    if not events:
        _err(f"no events in {args.file}" + ("" if cell is None else f" for cell {cell}"))
        return 1
    sessions = list(dict.fromkeys(str(e.get("session")) for e in events))
    for session in sessions:
        mine = [e for e in events if str(e.get("session")) == session]
        if len(sessions) > 1:
            print(f"== session {session}")
        print(aud.render_text(mine, detail=not args.summary, cell=cell))
    return 0


if __name__ == "__main__":
    sys.exit(main())
