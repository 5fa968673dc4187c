"""The process-launch hooks of the IPython extension.

Every way a cell starts a program ends in one of a few Python-level entry
points; each is replaced by a function that, while sandboxing is active,
asks the router for a wrapped launch (``client.wrap``) and calls the
ORIGINAL entry point with the wrapped argv/env, so pipes, waits, return
codes and errors stay the original's. When sandboxing is not active the
replacement calls the original with the unchanged arguments.

===================================  ============================================
entry point                          reached by
===================================  ============================================
``subprocess.Popen._execute_child``  subprocess.*, os.popen,
                                     asyncio.create_subprocess_*, IPython's
                                     getoutput (``!!``, ``x = !cmd``, %sx) and
                                     the script magics (%%bash, %%sh, %%script)
``os.system``                        os.system
``os._spawnvef``                     os.spawnv/spawnve/spawnvp/spawnvpe and the
                                     spawnl* forms (CPython 3.11-3.13 on POSIX)
``os.posix_spawn``/``posix_spawnp``  direct calls (and Popen's posix_spawn fast
                                     path, which is already wrapped by then)
module-level ``system`` in           ``!cmd``, aliases, %pip, %conda
IPython.core.interactiveshell and    (system_piped calls that name after its
ipykernel.zmqshell                   var_expand)
``multiprocessing.util.              multiprocessing's spawn and forkserver
spawnv_passfds``                     start methods (ProcessPoolExecutor too);
                                     a forkserver started outside the sandbox
                                     is refused, not used, while sandboxing
===================================  ============================================

A hook calling its original marks the thread "inside" so that the nested
entry point it reaches (Popen's posix_spawn fast path) passes through
instead of wrapping the wrapper. The router uses the same mark
(:func:`bypass`) to start the daemon itself with the real entry points.

This module knows nothing of IPython's shell object or of the daemon: the
router decides whether a launch is sandboxed and how it is wrapped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol


class WrappedLike(Protocol):
    launch: str
    argv: list[str]
    env: dict[str, str]
    file: str | None
    preexec: Callable[[], None] | None


class Router(Protocol):
    def sandboxing(self) -> bool:
        """Whether a launch made now, on this thread, must be sandboxed."""
        ...

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None,
        env: Mapping[str, str] | None,
        cwd: str | None,
        inline: bool = False,
    ) -> WrappedLike:
        """The wrapped launch; raises FileNotFoundError when the program
        does not exist (nothing runs) and any other error when the sandbox
        cannot be used (nothing runs either)."""
        ...

    def forget(self, launch: str) -> None:
        """A wrapped launch that could not be started."""
        ...


class HookError(RuntimeError):
    """A sandboxed launch could not be rewritten; nothing was run."""


_local = threading.local()


def _inside() -> bool:
    return bool(getattr(_local, "inside", 0))


@contextlib.contextmanager
def launching(router: Router, wrapped: WrappedLike) -> Iterator[None]:
    """Start a wrapped launch with the real entry points; when starting it
    fails, the router forgets it (nobody waits for its audit)."""
    try:
        with bypass():
            yield
    except BaseException:
        router.forget(wrapped.launch)
        raise


@contextlib.contextmanager
def bypass() -> Iterator[None]:
    """Launches made by this thread inside the block are not sandboxed."""
    _local.inside = getattr(_local, "inside", 0) + 1
    try:
        yield
    finally:
        _local.inside -= 1


def _str(value: Any) -> str:
    return os.fsdecode(value)


def _str_env(env: Mapping[Any, Any] | None) -> dict[str, str] | None:
    if env is None:
        return None
    return {_str(k): _str(v) for k, v in env.items()}


def popen_argv(args: Any, executable: Any, shell: bool) -> tuple[list[str], str]:
    """(argv, file to execute) exactly as CPython's POSIX
    ``Popen._execute_child`` computes them (3.11-3.13)."""
    # (a path-like with shell=True is refused before we get here)
    argv: list[Any] = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    if shell:
        unix_shell = "/system/bin/sh" if hasattr(sys, "getandroidapilevel") else "/bin/sh"
        argv = [unix_shell, "-c", *argv]
        if executable:
            argv[0] = executable
    if executable is None:
        executable = argv[0]
    return [_str(a) for a in argv], _str(executable)


def env_command(target: Mapping[str, str], base: Mapping[str, str]) -> list[str]:
    """An ``env`` prefix turning the environment ``base`` into ``target``
    (for the launch paths that cannot be given an environment: os.system
    and IPython's pexpect-based ``system``); [] when they are equal."""
    unset = sorted(k for k in base if k not in target)
    assign = [f"{k}={v}" for k, v in target.items() if base.get(k) != v]
    if not unset and not assign:
        return []
    env = "/usr/bin/env" if os.access("/usr/bin/env", os.X_OK) else shutil.which("env")
    if env is None:
        raise HookError(
            "agentsh: cannot give the sandboxed command its environment "
            "(no env program in /usr/bin or on PATH); nothing was run"
        )
    out = [env]
    for name in unset:
        out += ["-u", name]
    return out + assign


def _exec_line(wrapped: WrappedLike) -> str:
    """A shell command line that replaces the shell with the wrapper, so
    the wait status the caller sees is the command's own."""
    prefix = env_command(wrapped.env, os.environ)
    return "exec " + shlex.join([*prefix, *wrapped.argv])


def _then(first: Callable[[], None] | None, second: Any) -> Any:
    """Popen's preexec_fn running ``first``, then ``second`` (either may be None)."""
    if first is None or second is None:
        return first or second

    def both() -> None:
        first()
        second()

    return both


def _no_exec(*_args: Any) -> None:
    # Runs in the child of os._spawnvef: an exception there is _exit(127),
    # what an exec of a missing program gives without the sandbox.
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))


def _search(file: str, path: str | None) -> str:
    """The PATH search of exec*p / posix_spawnp (a name with a slash is
    used as it is)."""
    if "/" in file:
        return file
    found = shutil.which(file, mode=os.X_OK, path=path if path is not None else os.defpath)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)
    return found


def _relative_to_cwd(file: str) -> str:
    # execv/posix_spawn run a name without a slash from the current
    # directory; the wrapper would search PATH for it.
    return file if "/" in file else os.path.join(".", file)


_Target = tuple[Any, str]  # (object, attribute)


def _ipython_system_modules() -> list[Any]:
    mods = []
    for name in ("IPython.core.interactiveshell", "ipykernel.zmqshell"):
        mod = sys.modules.get(name)
        if mod is not None and callable(getattr(mod, "system", None)):
            mods.append(mod)
    return mods


class Hooks:
    """Installs and removes the hooks; ``uninstall`` puts back every
    original by identity. A replacement left in place because someone
    patched over it afterwards passes everything through once uninstalled."""

    def __init__(self, router: Router) -> None:
        self._router: Router | None = router
        # (target, attribute, original, replacement), in install order
        self._installed: list[tuple[Any, str, Any, Any]] = []
        # Processes whose start we wrapped and that may serve later launches
        # (a multiprocessing forkserver).
        self.sandboxed_pids: set[int] = set()

    @property
    def installed(self) -> bool:
        return bool(self._installed)

    def originals(self) -> dict[_Target, Any]:
        return {(t, a): orig for t, a, orig, _ in self._installed}

    def _active(self) -> Router | None:
        router = self._router
        if router is None or _inside() or not router.sandboxing():
            return None
        return router

    # -- install / uninstall ----------------------------------------------

    def install(self) -> None:
        if self._installed:
            return
        self._patch(subprocess.Popen, "_execute_child", self._make_execute_child)
        self._patch(os, "system", self._make_os_system)
        if callable(getattr(os, "_spawnvef", None)):
            self._patch(os, "_spawnvef", self._make_spawnvef)
        if callable(getattr(os, "posix_spawn", None)):
            self._patch(os, "posix_spawn", self._make_posix_spawn(search=False))
        if callable(getattr(os, "posix_spawnp", None)):
            self._patch(os, "posix_spawnp", self._make_posix_spawn(search=True))
        import multiprocessing.forkserver
        import multiprocessing.util

        self._patch(multiprocessing.util, "spawnv_passfds", self._make_spawnv_passfds)
        # The module-level name: popen_forkserver calls it (a bound method of
        # the module's one ForkServer, captured at import).
        self._patch(
            multiprocessing.forkserver, "connect_to_new_process", self._make_forkserver_guard
        )
        self.install_ipython_system()

    def install_ipython_system(self) -> None:
        """Hook the module-level ``system`` of IPython's and ipykernel's
        shells (again after ipykernel was imported later: idempotent)."""
        done = {id(t) for t, a, _, _ in self._installed if a == "system" and t is not os}
        for mod in _ipython_system_modules():
            if id(mod) not in done:
                self._patch(mod, "system", self._make_ipython_system)

    def _patch(self, target: Any, attr: str, make: Callable[[Any], Any]) -> None:
        original = target.__dict__[attr] if isinstance(target, type) else getattr(target, attr)
        replacement = make(original)
        replacement.__agentsh_original__ = original
        setattr(target, attr, replacement)
        self._installed.append((target, attr, original, replacement))

    def uninstall(self) -> None:
        """Restore every original (by identity) and stop routing."""
        self._router = None
        for target, attr, original, replacement in reversed(self._installed):
            current = (
                target.__dict__.get(attr)
                if isinstance(target, type)
                else getattr(target, attr, None)
            )
            if current is replacement:
                setattr(target, attr, original)
            else:
                warnings.warn(
                    f"agentsh: {getattr(target, '__name__', target)}.{attr} was replaced after "
                    "the extension hooked it; left as it is (the hook now passes through)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        self._installed.clear()

    # -- the replacements ---------------------------------------------------

    def _make_execute_child(self, original: Any) -> Any:
        hooks = self

        def _execute_child(
            popen: subprocess.Popen[Any],
            args: Any,
            executable: Any,
            preexec_fn: Any,
            close_fds: Any,
            pass_fds: Any,
            cwd: Any,
            env: Any,
            startupinfo: Any,
            creationflags: Any,
            shell: Any,
            *rest: Any,
        ) -> Any:
            router = hooks._active()
            if router is None or (shell and isinstance(args, os.PathLike)):
                # (a path-like with shell=True: the original raises TypeError)
                with bypass():
                    return original(
                        popen, args, executable, preexec_fn, close_fds, pass_fds, cwd, env,
                        startupinfo, creationflags, shell, *rest,
                    )  # fmt: skip
            argv, file = popen_argv(args, executable, bool(shell))
            # Inline: the wrapper's steps run as the preexec_fn of this very
            # Popen (no wrapper interpreter to start), the caller's own
            # preexec_fn after them, inside the sandbox.
            wrapped = router.wrap(
                argv,
                executable=file,
                env=_str_env(env),
                cwd=None if cwd is None else _str(cwd),
                inline=True,
            )
            steps = _then(wrapped.preexec, preexec_fn)
            with launching(router, wrapped):
                return original(
                    popen, wrapped.argv, wrapped.file or wrapped.argv[0], steps,
                    close_fds, pass_fds, cwd, wrapped.env, startupinfo, creationflags, False,
                    *rest,
                )  # fmt: skip

        return _execute_child

    def _make_os_system(self, original: Any) -> Any:
        hooks = self

        def system(command: Any) -> int:
            router = hooks._active()
            if router is None:
                with bypass():
                    return int(original(command))
            # As C system(): /bin/sh, named "sh" (its error messages say so).
            wrapped = router.wrap(
                ["sh", "-c", _str(command)], executable="/bin/sh", env=None, cwd=None
            )
            line = _exec_line(wrapped)
            with launching(router, wrapped):
                return int(original(line))

        return system

    def _make_spawnvef(self, original: Any) -> Any:
        hooks = self

        def _spawnvef(mode: int, file: Any, args: Any, env: Any, func: Any) -> int:
            router = hooks._active()
            if router is None:
                with bypass():
                    return int(original(mode, file, args, env, func))
            # the original's own checks, before anything is registered
            if not isinstance(args, (tuple, list)):
                raise TypeError("argv must be a tuple or a list")
            if not args or not args[0]:
                raise ValueError("argv first element cannot be empty")
            argv = [_str(a) for a in args]
            senv = _str_env(env)
            name = _str(file)
            try:
                if getattr(func, "__name__", "") in ("execvp", "execvpe"):
                    search_env = senv if senv is not None else os.environ
                    executable = _search(name, search_env.get("PATH", os.defpath))
                else:
                    executable = _relative_to_cwd(name)
                wrapped = router.wrap(argv, executable=executable, env=senv, cwd=None)
            except OSError:
                # Without the sandbox the child's exec fails and it exits
                # 127; do the same without running anything.
                with bypass():
                    return int(original(mode, file, args, env, _no_exec))
            with launching(router, wrapped):
                return int(original(mode, wrapped.argv[0], wrapped.argv, wrapped.env, os.execve))

        return _spawnvef

    def _make_posix_spawn(self, *, search: bool) -> Callable[[Any], Any]:
        hooks = self

        def make(original: Any) -> Any:
            def posix_spawn(path: Any, argv: Any, env: Any, /, **kwargs: Any) -> int:
                router = hooks._active()
                if router is None:
                    with bypass():
                        return int(original(path, argv, env, **kwargs))
                name = _str(path)
                if search:
                    # glibc's posix_spawnp searches the caller's PATH, not env's
                    executable = _search(name, os.environ.get("PATH", os.defpath))
                else:
                    executable = _relative_to_cwd(name)
                wrapped = router.wrap(
                    [_str(a) for a in argv],
                    executable=executable,
                    env=_str_env(env),
                    cwd=None,
                )
                with launching(router, wrapped):
                    return int(original(wrapped.argv[0], wrapped.argv, wrapped.env, **kwargs))

            posix_spawn.__name__ = "posix_spawnp" if search else "posix_spawn"
            return posix_spawn

        return make

    def _make_spawnv_passfds(self, original: Any) -> Any:
        hooks = self

        def spawnv_passfds(path: Any, args: Any, passfds: Any) -> int:
            router = hooks._active()
            if router is None:
                with bypass():
                    return int(original(path, args, passfds))
            wrapped = router.wrap(
                [_str(a) for a in args], executable=_str(path), env=None, cwd=None
            )
            # No environment argument here: an env prefix sets it, as for os.system.
            argv = [*env_command(wrapped.env, os.environ), *wrapped.argv]
            with launching(router, wrapped):
                # multiprocessing passes the path as bytes (spawn.get_executable)
                pid = int(original(os.fsencode(argv[0]), argv, passfds))
            hooks.sandboxed_pids.add(pid)
            return pid

        return spawnv_passfds

    def _make_forkserver_guard(self, original: Any) -> Any:
        hooks = self

        def connect_to_new_process(fds: Any) -> Any:
            server = getattr(original, "__self__", None)
            pid = getattr(server, "_forkserver_pid", None)
            if hooks._active() is not None and pid is not None and pid not in hooks.sandboxed_pids:
                # Its workers are forks of a server that runs unsandboxed.
                raise HookError(
                    f"agentsh: the multiprocessing forkserver (pid {pid}) was started outside "
                    "the sandbox, so its workers would be too; nothing was run. Start it in a "
                    "sandboxed cell, or use the spawn start method."
                )
            return original(fds)

        return connect_to_new_process

    def _make_ipython_system(self, original: Any) -> Any:
        hooks = self

        def system(cmd: str) -> Any:
            router = hooks._active()
            if router is None:
                with bypass():
                    return original(cmd)
            sh = ipython_shell(original)
            wrapped = router.wrap([sh, "-c", cmd], executable=sh, env=None, cwd=None)
            line = _exec_line(wrapped)
            with launching(router, wrapped):
                return original(line)

        return system


def ipython_shell(system: Any) -> str:
    """The shell IPython's pexpect-based ``system`` runs commands with:
    its ProcessHandler's ``sh`` ($SHELL, else sh, found on PATH)."""
    handler = getattr(system, "__self__", None)
    sh = getattr(handler, "sh", None) if handler is not None else None
    if isinstance(sh, str) and sh:
        return sh
    name = os.environ.get("SHELL", "sh")
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, f'"{name}" shell not found', name)
    return found
