"""The built-in protected set: what something outside the sandbox runs or
loads later, so that nothing planted inside runs unconfined afterwards.

One list, in order (the first entry whose paths match names the denial,
``protected:<name>``). Every operation but ``read`` on these paths is
refused before the policy's own file rules, in the workspace and the temp
dirs too; a policy opens an entry only by naming it under ``unprotect``
with a reason, and the entries marked fixed not even then.

Pure: the supervisor gathers the facts of the host (home, XDG and Jupyter
dirs, ``sys.path``, the prefixes, ``PATH``) into a :class:`Host` and calls
:func:`protected_set`; nothing here touches the file system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ._glob import escape

RULE_PREFIX = "protected:"

# PATH directories a system keeps for its own programs: a directory ahead of
# the first of them shadows every system command.
SYSTEM_PATH = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/snap/bin",
)

# name -> (why, fixed). In the order the rules are applied; a fixed entry
# cannot be opened by a policy: it is the sandbox's own integrity.
ABOUT: dict[str, tuple[str, bool]] = {
    "agentsh-state": (
        "agentsh-ipy's own state: the audit logs are the record, the trash is"
        " restored by the user outside, a policy decides the next session",
        True,
    ),
    "agentsh-ipy": (
        "agentsh-ipy's own code: the supervisor runs it unconfined at its next start",
        True,
    ),
    "shell-startup": (
        "shell and login startup files: run by the user's next shell or login",
        False,
    ),
    "ipython-profile": (
        "IPython profiles' startup scripts, config files and extensions: run by the"
        " next kernel or IPython, where %%agentsh itself runs unconfined",
        False,
    ),
    "jupyter-config": (
        "Jupyter's config dirs: loaded by the next Jupyter server, kernel or tool",
        False,
    ),
    "jupyter-data": (
        "Jupyter's data dirs: kernelspecs say what the next kernel runs (a sandboxed"
        " one could be made a plain one), extensions run in the browser",
        False,
    ),
    "python-startup": (
        "Python's startup hooks (sitecustomize, usercustomize, PYTHONSTARTUP):"
        " imported by every later Python, the supervisor's included",
        False,
    ),
    "git": (
        "git hooks and config: hooks, fsmonitor, pagers and aliases run on the"
        " user's next git command",
        False,
    ),
    "editors": (
        "editor settings, tasks and plugins: run when the user opens the folder",
        False,
    ),
    "autostart": (
        "desktop autostart and menu entries: started at the next login or click",
        False,
    ),
    "user-units": (
        "systemd units and init scripts: started by the service manager",
        False,
    ),
    "cron": ("crontabs: run on schedule", False),
    "dynamic-loader": (
        "the dynamic loader's configuration: preloads code into every program",
        False,
    ),
    "user-path": (
        "PATH directories ahead of the system's (and ~/.local/bin, ~/bin, which a"
        " login puts there): a program planted there shadows a system command",
        False,
    ),
    "python-env": (
        "Python environments: installed packages, .pth files and interpreters are"
        " imported or run by every later Python of that environment (`pip install`"
        " writes here)",
        False,
    ),
    "agentsh-env": (
        "the Python environment agentsh-ipy and the sandboxed kernel run from: the"
        " supervisor imports it unconfined (kept when python-env is opened)",
        True,
    ),
}

NAMES = tuple(ABOUT)
OPENABLE = tuple(name for name, (_, fixed) in ABOUT.items() if not fixed)
FIXED = tuple(name for name, (_, fixed) in ABOUT.items() if fixed)


def rule_name(name: str) -> str:
    return RULE_PREFIX + name


@dataclass(frozen=True)
class Host:
    """The facts the set depends on, gathered by the supervisor: absolute,
    normalized, symlinks resolved. Tuples may repeat or overlap."""

    home: str
    config_homes: tuple[str, ...] = ()  # $XDG_CONFIG_HOME, ~/.config
    data_homes: tuple[str, ...] = ()  # $XDG_DATA_HOME, ~/.local/share
    state_dirs: tuple[str, ...] = ()  # agentsh-ipy's state ($XDG_STATE_HOME/agentsh-ipy)
    ipython_dirs: tuple[str, ...] = ()  # $IPYTHONDIR, ~/.ipython
    jupyter_config: tuple[str, ...] = ()  # every dir of `jupyter --paths` config
    jupyter_data: tuple[str, ...] = ()  # and data
    site_dirs: tuple[str, ...] = ()  # its site-packages, the user site included
    prefixes: tuple[str, ...] = ()  # sys.prefix, sys.base_prefix, ...
    package: str = ""  # agentsh_ipy's own directory
    startup_files: tuple[str, ...] = ()  # $PYTHONSTARTUP
    user_path: tuple[str, ...] = ()  # PATH directories ahead of the system's


@dataclass(frozen=True)
class Protected:
    """One entry: path globs (absolute, ``*``/``**`` as in file rules) and
    the literal directories whose rename or replacement by a symlink would
    move what the globs name out from under them."""

    name: str
    why: str
    paths: tuple[str, ...]
    keep: tuple[str, ...] = ()
    fixed: bool = False

    @property
    def rule(self) -> str:
        return rule_name(self.name)


def ahead_of_system(path_entries: Iterable[str]) -> list[str]:
    """The absolute PATH entries before the first system directory (all of
    them when PATH has none). A relative entry is skipped: it means
    whatever the working directory is."""
    out = []
    for entry in path_entries:
        d = "/" + entry.strip("/") if entry.startswith("/") else entry
        if d in SYSTEM_PATH:
            break
        if d.startswith("/"):
            out.append(d)
    return out


# -- building -----------------------------------------------------------------
# A pattern is (literal path, glob suffix): the literal part is escaped and
# may be resolved (a dotfile that is a symlink protects its target too).
_Pattern = tuple[str, str]

_TREE = ("", "/**")  # a directory and everything below it
_HOOK_NAMES = ("sitecustomize", "usercustomize")
_HOME_SHELL = (
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".inputrc",
    ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".cshrc", ".tcshrc",
    ".login", ".logout", ".kshrc", ".mkshrc", ".pam_environment", ".xprofile",
    ".xinitrc", ".xsession", ".xsessionrc", ".xserverrc",
    ".ssh/rc", ".ssh/environment", ".ssh/config", ".ssh/authorized_keys",
    ".ssh/authorized_keys2",
)  # fmt: skip
_SYSTEM_SHELL = (
    "/etc/profile", "/etc/bash.bashrc", "/etc/bash.bash_logout", "/etc/bashrc",
    "/etc/zshrc", "/etc/zprofile", "/etc/zshenv", "/etc/zlogin", "/etc/environment",
    "/etc/ssh/sshrc",
)  # fmt: skip
_GIT_ANYWHERE = (
    # `.git` itself: a file there ("gitdir: /tmp/x") points git at a config
    # written anywhere; a directory renamed there brings its own hooks.
    "/**/.git",
    "/**/.git/config",
    "/**/.git/config.worktree",
    "/**/.git/hooks",
    "/**/.git/hooks/**",
    "/**/.git/modules/**/config",
    "/**/.git/modules/**/hooks",
    "/**/.git/modules/**/hooks/**",
    "/**/.git/worktrees/*/config.worktree",
    "/**/.gitmodules",
)
_EDITORS_ANYWHERE = ("/**/.vscode", "/**/.vscode/**", "/**/.idea", "/**/.idea/**")
# Any environment's packages, wherever it lives (a venv under /tmp, a
# project's .venv): pip writes here, every Python of it imports from here.
_ENV_ANYWHERE = (
    "/**/site-packages",
    "/**/site-packages/**",
    "/**/dist-packages",
    "/**/dist-packages/**",
    "/**/pyvenv.cfg",  # its `home` says which interpreter and stdlib the venv runs
)


def _tree(*dirs: str) -> list[_Pattern]:
    return [(d, suffix) for d in dirs for suffix in _TREE]


def _files(*paths: str) -> list[_Pattern]:
    return [(p, "") for p in paths]


def _under(dirs: Iterable[str], *names: str) -> list[_Pattern]:
    return [(_join(d, n), "") for d in dirs for n in names]


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel if rel else base


def _anywhere(*globs: str) -> list[_Pattern]:
    return [("/", g) for g in globs]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i.startswith("/")))


def _paths(name: str, host: Host) -> list[_Pattern]:
    h = host.home
    configs = _unique((*host.config_homes, _join(h, ".config")))
    datas = _unique((*host.data_homes, _join(h, ".local/share")))
    if name == "agentsh-state":
        return [*_tree(*host.state_dirs), *_anywhere("/**/.agentsh-trash", "/**/.agentsh-trash/**")]
    if name == "agentsh-ipy":
        return _tree(host.package) if host.package else []
    if name == "shell-startup":
        return [
            *_under([h], *_HOME_SHELL),
            *_tree(_join(h, ".bashrc.d"), *(_join(c, "fish") for c in configs)),
            *_files(*_SYSTEM_SHELL),
            *_tree("/etc/profile.d", "/etc/zsh"),
        ]
    if name == "ipython-profile":
        out: list[_Pattern] = []
        for d in _unique((*host.ipython_dirs, _join(h, ".ipython"))):
            # the profile directory itself: a prepared one renamed into place
            out += [(d, "/profile_*"), (d, "/profile_*/startup"), (d, "/profile_*/startup/**")]
            out += [(d, "/profile_*/*_config.py"), (d, "/profile_*/*_config.json")]
            out += _tree(_join(d, "extensions"), _join(d, "nbextensions"))
        return out
    if name == "jupyter-config":
        return _tree(
            *host.jupyter_config, _join(h, ".jupyter"), *(_join(c, "jupyter") for c in configs)
        )
    if name == "jupyter-data":
        return _tree(*host.jupyter_data, *(_join(d, "jupyter") for d in datas))
    if name == "python-startup":
        # Anywhere, not only in today's sys.path: a directory becomes one
        # through PYTHONPATH, a .pth file or a project's layout.
        out = _files(*host.startup_files)
        for hook in _HOOK_NAMES:
            # a module (its bytecode in __pycache__ too), or a package
            out += _anywhere(f"/**/{hook}.*", f"/**/{hook}", f"/**/{hook}/**")
        return out
    if name == "git":
        return [
            *_files(_join(h, ".gitconfig"), "/etc/gitconfig"),
            *_tree(*(_join(c, "git") for c in configs)),
            *_anywhere(*_GIT_ANYWHERE),
        ]
    if name == "editors":
        return [
            *_anywhere(*_EDITORS_ANYWHERE),
            *_files(_join(h, ".vimrc"), _join(h, ".exrc"), _join(h, ".emacs")),
            *_tree(_join(h, ".vim"), _join(h, ".emacs.d")),
            *_tree(*(_join(c, sub) for c in configs for sub in ("nvim", "Code/User"))),
        ]
    if name == "autostart":
        return _tree(
            *(_join(c, "autostart") for c in configs),
            *(_join(d, "applications") for d in datas),
            "/etc/xdg/autostart",
        )
    if name == "user-units":
        return [
            *_tree(*(_join(c, sub) for c in configs for sub in ("systemd", "environment.d"))),
            *_tree(*(_join(d, "systemd") for d in datas), "/etc/systemd", "/etc/init.d"),
            *_files("/etc/rc.local"),
        ]
    if name == "cron":
        return [
            *_tree("/var/spool/cron", "/var/spool/anacron", "/etc/cron.d"),
            *_files("/etc/crontab", "/etc/anacrontab"),
            ("/etc", "/cron.*"),
            ("/etc", "/cron.*/**"),
        ]
    if name == "dynamic-loader":
        return [*_files("/etc/ld.so.preload", "/etc/ld.so.conf"), *_tree("/etc/ld.so.conf.d")]
    if name == "user-path":
        out = []
        for d in _unique((*host.user_path, _join(h, ".local/bin"), _join(h, "bin"))):
            # PATH finds what is directly in the directory; a tree would take
            # the whole home from a PATH that names it.
            below = "/*" if h == d or h.startswith(d.rstrip("/") + "/") else "/**"
            out += [(d, ""), (d, below)]
        return out
    if name == "python-env":
        return [*_anywhere(*_ENV_ANYWHERE), *_tree(*host.site_dirs, *host.prefixes)]
    if name == "agentsh-env":
        return _tree(*host.site_dirs, *host.prefixes)
    raise ValueError(f"no protected entry {name!r}")


def _parents(path: str) -> list[str]:
    out = []
    while (path := path.rsplit("/", 1)[0]) != "":
        out.append(path)
    return out


def protected_set(host: Host, resolve: Callable[[str], str] | None = None) -> tuple[Protected, ...]:
    """The entries for ``host``, in order. ``resolve`` (the supervisor's
    ``os.path.realpath``) maps each literal part to what it reaches, so a
    dotfile that is a symlink protects its target as well."""
    out = []
    for name, (why, fixed) in ABOUT.items():
        patterns: list[_Pattern] = []
        for literal, suffix in _paths(name, host):
            patterns.append((literal, suffix))
            if resolve is not None and literal != "/":
                real = resolve(literal)
                if real != literal:
                    patterns.append((real, suffix))
        globs = _unique(escape(lit).rstrip("/") + suffix if suffix else escape(lit)
                        for lit, suffix in patterns)  # fmt: skip
        # The literal directory a glob starts from, and every one above it:
        # renamed, or replaced by a symlink, each would carry the entry away.
        keep = _unique(
            d
            for lit, suffix in patterns
            for d in ([lit] if suffix and lit != "/" else []) + _parents(lit)
        )
        out.append(Protected(name, why, globs, keep, fixed))
    return tuple(out)


def describe(entries: Sequence[Protected]) -> str:
    """The set as text: each entry's rule, why, and paths."""
    lines = []
    for e in entries:
        lines.append(f"{e.rule}{' (fixed)' if e.fixed else ''}: {e.why}")
        lines += [f"    {p}" for p in e.paths]
    return "\n".join(lines)
