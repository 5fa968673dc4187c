"""The built-in protected set (policy/_protected.py), the policy's
``unprotect`` override and how the engine applies both. Pure: a made-up
host, no file system."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import agentsh_ipy.policy as pol
from agentsh_ipy.policy import FILE_OPERATIONS, Policy, PolicyError, ProtectedHost, _protected

VARS = {"WORKSPACE": "/home/u", "HOME": "/home/u", "TMPDIR": "/tmp"}
WRITES = [op for op in FILE_OPERATIONS if op != "read"]
SITE = "/opt/env/lib/python3.11/site-packages"
HOST = ProtectedHost(
    home="/home/u",
    config_homes=("/home/u/xdg-config",),
    data_homes=("/home/u/.local/share",),
    state_dirs=("/home/u/.local/state/agentsh-ipy",),
    ipython_dirs=("/home/u/.ipython",),
    jupyter_config=("/home/u/.jupyter", "/opt/env/etc/jupyter", "/etc/jupyter"),
    jupyter_data=("/home/u/.local/share/jupyter", "/opt/env/share/jupyter"),
    site_dirs=(SITE,),
    prefixes=("/opt/env", "/usr"),
    package=f"{SITE}/agentsh_ipy",
    startup_files=("/home/u/.pythonrc.py",),
    user_path=("/home/u/.cargo/bin",),
)
# The workspace is the home directory, the policy allows every write there
# and in /tmp: only the protected set stands in the way.
OPEN = """\
version: 1
file_rules:
  - name: everything
    paths: ["/", "/**"]
    operations: ["*"]
    decision: allow
"""

# (path, rule) for every class, each a write the OPEN policy would allow.
PLANTED = [
    ("/home/u/.local/state/agentsh-ipy/audit/old-session.jsonl", "agentsh-state"),
    ("/home/u/proj/.agentsh-trash/x/meta.json", "agentsh-state"),
    (f"{SITE}/agentsh_ipy/cli.py", "agentsh-ipy"),
    ("/home/u/.bashrc", "shell-startup"),
    ("/home/u/.profile", "shell-startup"),
    ("/home/u/.zshrc", "shell-startup"),
    ("/home/u/.ssh/rc", "shell-startup"),
    ("/home/u/.ssh/authorized_keys", "shell-startup"),
    ("/etc/profile.d/x.sh", "shell-startup"),
    ("/home/u/xdg-config/fish/config.fish", "shell-startup"),
    ("/home/u/.ipython/profile_default/startup/00-x.py", "ipython-profile"),
    ("/home/u/.ipython/profile_default/ipython_config.py", "ipython-profile"),
    ("/home/u/.ipython/profile_new", "ipython-profile"),
    ("/home/u/.jupyter/jupyter_server_config.py", "jupyter-config"),
    ("/home/u/xdg-config/jupyter/x.json", "jupyter-config"),
    ("/etc/jupyter/jupyter_server_config.d/x.json", "jupyter-config"),
    ("/home/u/.local/share/jupyter/kernels/agentsh/kernel.json", "jupyter-data"),
    ("/opt/env/share/jupyter/kernels/python3/kernel.json", "jupyter-data"),
    ("/home/u/.local/lib/python3.11/site-packages/usercustomize.py", "python-startup"),
    (f"{SITE}/sitecustomize.py", "python-startup"),
    (f"{SITE}/__pycache__/sitecustomize.cpython-311.pyc", "python-startup"),
    ("/home/u/src/sitecustomize/__init__.py", "python-startup"),
    ("/home/u/.pythonrc.py", "python-startup"),
    ("/home/u/.gitconfig", "git"),
    ("/home/u/xdg-config/git/config", "git"),
    ("/home/u/proj/.git/hooks/pre-commit", "git"),
    ("/home/u/proj/.git/config", "git"),
    ("/home/u/proj/.git", "git"),  # a file here points git at another config
    ("/home/u/proj/.git/modules/sub/hooks/post-checkout", "git"),
    ("/home/u/proj/.gitmodules", "git"),
    ("/tmp/clone/.git/hooks/pre-commit", "git"),
    ("/home/u/proj/.vscode/tasks.json", "editors"),
    ("/home/u/proj/.idea/workspace.xml", "editors"),
    ("/home/u/.vimrc", "editors"),
    ("/home/u/xdg-config/autostart/x.desktop", "autostart"),
    ("/home/u/.config/autostart/x.desktop", "autostart"),  # the default, XDG or not
    ("/home/u/.local/share/applications/firefox.desktop", "autostart"),
    ("/home/u/xdg-config/systemd/user/x.service", "user-units"),
    ("/var/spool/cron/crontabs/u", "cron"),
    ("/etc/cron.daily/x", "cron"),
    ("/etc/ld.so.preload", "dynamic-loader"),
    ("/home/u/.local/bin/ls", "user-path"),
    ("/home/u/bin/git", "user-path"),
    ("/home/u/.cargo/bin/cargo", "user-path"),
    (f"{SITE}/evil.pth", "python-env"),
    (f"{SITE}/numpy/__init__.py", "python-env"),
    ("/opt/env/bin/python3", "python-env"),
    ("/opt/env/pyvenv.cfg", "python-env"),
    ("/tmp/venv/lib/python3.11/site-packages/x.pth", "python-env"),
    ("/home/u/proj/.venv/lib/python3.12/site-packages/pkg/x.py", "python-env"),
    ("/home/u/proj/.venv/pyvenv.cfg", "python-env"),
    ("/usr/lib/python3/dist-packages/x.py", "python-env"),
]
# Writes a notebook makes all the time: none is protected.
ORDINARY = [
    "/home/u/notes.txt",
    "/home/u/proj/data.csv",
    "/home/u/proj/.ipynb_checkpoints/a-checkpoint.ipynb",
    "/home/u/.ipython/profile_default/history.sqlite",
    "/home/u/.cache/agentsh-ipy/sandbox/pip/http/x",
    "/home/u/proj/.github/workflows/ci.yml",
    "/home/u/proj/gitconfig.txt",
    "/home/u/proj/src/pkg/__init__.py",
    "/home/u/.local/share/other-app/x",
    "/home/u/.config/matplotlib/x",
    "/tmp/x",
]


def policy(text: str = OPEN, host: ProtectedHost = HOST) -> Policy:
    return Policy.parse(textwrap.dedent(text), "p.yaml", VARS).with_protected(
        pol.protected_set(host)
    )


@pytest.mark.parametrize(("path", "name"), PLANTED)
def test_every_write_is_denied_and_named(path: str, name: str) -> None:
    p = policy()
    for op in WRITES:
        d = p.check_file(op, path)
        assert (d.decision, d.rule) == ("deny", f"protected:{name}"), (op, path)
        assert d.message == _protected.ABOUT[name][0]
    assert p.check_file("read", path).rule == "everything"


@pytest.mark.parametrize("path", ORDINARY)
def test_ordinary_writes_stay_the_policy_s(path: str) -> None:
    p = policy()
    for op in WRITES:
        assert p.check_file(op, path).rule == "everything", (op, path)


def test_the_directories_above_cannot_be_renamed_or_replaced() -> None:
    """Renaming a directory an entry lies in (or putting a symlink in its
    place before it exists) would carry the entry out from under its paths."""
    p = policy()
    for path, name in [
        ("/home/u", "agentsh-state"),
        ("/home/u/.ipython", "ipython-profile"),
        ("/home/u/xdg-config", "shell-startup"),
        ("/home/u/.config", "shell-startup"),
        ("/home/u/.local/share", "jupyter-data"),
        ("/opt", "agentsh-ipy"),
        ("/etc", "shell-startup"),
    ]:
        for op in ("rename", "link"):
            d = p.check_file(op, path)
            assert (d.decision, d.rule) == ("deny", f"protected:{name}"), (op, path)
            assert "cannot be renamed or replaced" in d.message
        # making one, or anything else there, is the policy's to decide
        for op in ("mkdir", "write", "chmod"):
            assert p.check_file(op, path).rule == "everything", (op, path)
    # a glob entry (.git anywhere) moves with its parents: they are free
    assert p.check_file("rename", "/home/u/proj").rule == "everything"
    assert p.check_file("rename", "/").rule == "everything"


def test_the_entries_in_order() -> None:
    entries = pol.protected_set(HOST)
    assert [e.name for e in entries] == list(_protected.ABOUT)
    assert [e.name for e in entries if e.fixed] == ["agentsh-state", "agentsh-ipy", "agentsh-env"]
    for e in entries:
        assert e.rule == f"protected:{e.name}" and e.paths and e.why
        assert all(path.startswith("/") for path in (*e.paths, *e.keep))
    text = pol.describe_protected(entries)
    assert "protected:python-env: Python environments" in text
    assert "    /**/.git/hooks/**" in text


def test_symlinked_dotfiles_are_protected_at_their_targets() -> None:
    links = {"/home/u/.bashrc": "/home/u/dotfiles/bashrc", "/home/u/.jupyter": "/srv/jupyter"}
    entries = pol.protected_set(HOST, lambda path: links.get(path, path))
    p = Policy.parse(OPEN, "p.yaml", VARS).with_protected(entries)
    assert p.check_file("write", "/home/u/dotfiles/bashrc").rule == "protected:shell-startup"
    assert p.check_file("write", "/home/u/dotfiles/other").rule == "everything"
    assert p.check_file("create", "/srv/jupyter/x.py").rule == "protected:jupyter-config"
    assert p.check_file("rename", "/srv").rule == "protected:jupyter-config"


def test_odd_characters_in_host_paths_are_literal() -> None:
    host = ProtectedHost(home="/home/[u]*", state_dirs=("/home/[u]*/st?",))
    p = policy(host=host)
    assert p.check_file("write", "/home/[u]*/.bashrc").rule == "protected:shell-startup"
    assert p.check_file("write", "/home/u/.bashrc").rule == "everything"
    assert p.check_file("write", "/home/[u]*/st?/x").rule == "protected:agentsh-state"
    assert p.check_file("write", "/home/[u]*/stx/x").rule == "everything"


def test_path_ahead_of_the_system() -> None:
    ahead = pol.ahead_of_system
    assert ahead(["/home/u/.local/bin", "rel", "/opt/x/bin/", "/usr/bin", "/home/u/late"]) == [
        "/home/u/.local/bin",
        "/opt/x/bin",
    ]
    assert ahead(["/bin", "/home/u/bin"]) == []
    assert ahead(["/opt/only"]) == ["/opt/only"]
    # the home directory on PATH: what is directly in it, not the whole home
    home_on_path = ProtectedHost(home="/home/u", user_path=("/home/u", "/home"))
    p = policy(host=home_on_path)
    assert p.check_file("write", "/home/u/ls").rule == "protected:user-path"
    assert p.check_file("write", "/home/u/proj/x").rule == "everything"
    assert p.check_file("write", "/home/v").rule == "protected:user-path"


def test_policy_first_rules_come_after_the_protected_set() -> None:
    """A policy's own deny comes after the set; its allow never opens it."""
    p = policy(
        """\
        version: 1
        file_rules:
          - name: mine
            paths: ["/home/u/.bashrc", "/home/u/notes.txt"]
            operations: ["*"]
            decision: allow
        """
    )
    assert p.check_file("write", "/home/u/.bashrc").rule == "protected:shell-startup"
    assert p.check_file("write", "/home/u/notes.txt").rule == "mine"
    assert p.check_file("read", "/home/u/.bashrc").rule == "mine"


# -- unprotect -------------------------------------------------------------------

UNPROTECT = (
    OPEN
    + """\
unprotect:
  - name: python-env
    reason: "cells pip install into ./proj/.venv on purpose"
  - {name: git, reason: clones}
"""
)


def test_unprotect_opens_only_the_named_entries() -> None:
    p = policy(UNPROTECT)
    assert [(u.name, u.reason) for u in p.unprotect] == [
        ("python-env", "cells pip install into ./proj/.venv on purpose"),
        ("git", "clones"),
    ]
    assert [e.name for e in p.opened] == ["git", "python-env"]  # in the set's order
    venv = "/home/u/proj/.venv/lib/python3.12/site-packages/pkg/x.py"
    assert p.check_file("create", venv).rule == "everything"
    assert p.check_file("write", "/tmp/venv/pyvenv.cfg").rule == "everything"
    assert p.check_file("write", "/home/u/proj/.git/hooks/pre-commit").rule == "everything"
    # the rest of the set holds, and so does the environment agentsh-ipy runs from
    assert p.check_file("write", "/home/u/.bashrc").rule == "protected:shell-startup"
    assert p.check_file("write", f"{SITE}/evil.pth").rule == "protected:agentsh-env"
    assert p.check_file("write", "/opt/env/bin/python3").rule == "protected:agentsh-env"
    assert p.check_file("write", f"{SITE}/sitecustomize.py").rule == "protected:python-startup"
    assert p.check_file("write", f"{SITE}/agentsh_ipy/x.py").rule == "protected:agentsh-ipy"
    # a directory kept for an opened entry is kept for the others still
    assert p.check_file("rename", "/opt/env").rule == "protected:agentsh-ipy"


def test_without_unprotect_nothing_is_opened() -> None:
    p = policy()
    assert p.unprotect == () and p.opened == ()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            "{name: pythonenv, reason: x}",
            "unknown protected entry 'pythonenv'; a policy may open: "
            + ", ".join(_protected.OPENABLE),
        ),
        (
            "{name: agentsh-state, reason: x}",
            "protected entry 'agentsh-state' cannot be opened by a policy (agentsh-ipy's own"
            " state: the audit logs are the record, the trash is restored by the user outside,"
            " a policy decides the next session); a policy may open: "
            + ", ".join(_protected.OPENABLE),
        ),
        ("{name: python-env}", "each entry of unprotect is missing required key 'reason'"),
        ("{name: python-env, reason: '  '}", "the reason must not be empty"),
        (
            "python-env",
            "each entry of unprotect names an entry and a reason, e.g. {name: python-env,"
            ' reason: "cells install into ./.venv"}',
        ),
        (
            "{name: git, reason: x, why: y}",
            "unknown key 'why' in each entry of unprotect; allowed: name, reason",
        ),
    ],
)
def test_unprotect_is_validated(entry: str, reason: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.parse(f"version: 1\nunprotect:\n  - {entry}\n", "p.yaml", VARS)
    assert info.value.problems == [("p.yaml", 3, reason)]


def test_unprotect_twice_and_not_a_list() -> None:
    text = "version: 1\nunprotect:\n  - {name: git, reason: a}\n  - {name: git, reason: b}\n"
    with pytest.raises(PolicyError) as info:
        Policy.parse(text, "p.yaml", VARS)
    assert info.value.problems == [("p.yaml", 4, "'git' is opened twice (first at line 3)")]
    with pytest.raises(PolicyError) as info:
        Policy.parse("version: 1\nunprotect: git\n", "p.yaml", VARS)
    assert info.value.problems == [("p.yaml", 2, "unprotect must be a list, not 'git'")]
    assert Policy.parse("version: 1\nunprotect: []\n", "p.yaml", VARS).unprotect == ()


def test_the_default_policy_opens_nothing() -> None:
    assert pol.load_default(VARS).unprotect == ()


def test_docs_list_every_entry_in_order() -> None:
    """docs/security.md's table names each entry, fixed ones as such, in
    the order the rules apply."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)`( \(fixed\))? \|", docs, re.M)
    assert [name for name, _ in rows] == list(_protected.ABOUT)
    assert [name for name, fixed in rows if fixed] == list(_protected.FIXED)
