"""What an exec runs: ld.so's command line, "#!" lines as the kernel reads
them, the content index of the programs command rules name, and the check
on a running process's mapped file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentsh_ipy import policy as pol
from agentsh_ipy.supervisor import _exec_identity as ei

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only")


def _policy(rules: str) -> pol.Policy:
    text = "version: 1\nname: t\ncommand_rules:\n" + rules
    return pol.Policy.parse(text, "t.yaml", {"WORKSPACE": "/ws", "HOME": "/h", "TMPDIR": "/t"})


NO_ID = _policy("  - {name: no-id, commands: [id], decision: deny}\n")


# -- ld.so's command line --------------------------------------------------------


@pytest.mark.parametrize(
    "argv, program, seen, mode",
    [
        (["ld.so", "/usr/bin/id"], "/usr/bin/id", ["/usr/bin/id"], "run"),
        (
            ["ld.so", "/usr/bin/id", "-u", "--list"],
            "/usr/bin/id",
            ["/usr/bin/id", "-u", "--list"],
            "run",
        ),
        (
            ["ld.so", "--argv0", "x", "--library-path", "/l", "--inhibit-cache", "./id", "-g"],
            "./id",
            ["x", "-g"],
            "run",
        ),
        (
            [
                "ld.so",
                "--preload",
                "a.so",
                "--audit",
                "b.so",
                "--inhibit-rpath",
                "c",
                "--glibc-hwcaps-prepend",
                "x",
                "--glibc-hwcaps-mask",
                "y",
                "/p",
            ],
            "/p",
            ["/p"],
            "run",
        ),
        (["ld.so", "--list", "/p"], "/p", ["/p"], "list"),
        (["ld.so", "--verify", "/p"], "/p", ["/p"], "verify"),
        (["ld.so", "--", "/p", "a"], "/p", ["/p", "a"], "run"),
        (["ld.so", "-x"], "-x", ["-x"], "run"),  # one dash: a program name to ld.so
    ],
)
def test_ldso_finds_the_program(argv: list[str], program: str, seen: list[str], mode: str) -> None:
    run = ei.parse_ldso(argv)
    assert (run.program, run.argv, run.mode) == (program, seen, mode)


@pytest.mark.parametrize(
    "argv, mode",
    [
        (["ld.so"], "usage"),
        (["ld.so", "--argv0"], "usage"),  # an option missing its value
        (["ld.so", "--library-path"], "usage"),
        (["ld.so", "--frob", "/usr/bin/id"], "usage"),  # an unknown option
        (["ld.so", "--help", "/usr/bin/id"], "help"),
        (["ld.so", "--version"], "version"),
        (["ld.so", "--list-tunables", "/usr/bin/id"], "list-tunables"),
        (["ld.so", "--list-diagnostics"], "list-diagnostics"),
        (["ld.so", "--list"], "list"),
    ],
)
def test_ldso_runs_nothing(argv: list[str], mode: str) -> None:
    run = ei.parse_ldso(argv)
    assert run.program is None and run.mode == mode


def test_ldso_options_are_recorded() -> None:
    run = ei.parse_ldso(["ld.so", "--preload", "/x.so", "--argv0", "a", "/p"])
    assert run.options == {"preload": "/x.so", "argv0": "a"}


# -- "#!" lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"#!/bin/sh\necho\n", ("/bin/sh", None)),
        (b"#! /usr/bin/env  python3 -u \nx", ("/usr/bin/env", "python3 -u")),
        (b"#!\t/bin/sh\t-e\n", ("/bin/sh", "-e")),
        (b"#!/bin/sh", ("/bin/sh", None)),  # no newline: the file ends (NULs follow)
        (b"#!relative/interp arg\n", ("relative/interp", "arg")),
        (b"#!/bin/sh\0-e\n", ("/bin/sh", None)),  # a NUL ends the name, no argument
        (b"#!/bin/sh -e\0tail\n", ("/bin/sh", "-e")),  # a NUL ends the argument
        (b"#!/bin/sh" + b" " * 300 + b"x\n", ("/bin/sh", None)),  # arg past the buffer
    ],
)
def test_shebang_as_the_kernel_reads_it(head: bytes, expected: tuple[str, str | None]) -> None:
    assert ei.parse_shebang(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x7fELF\x02\x01\x01",
        b"#",
        b"# !/bin/sh\n",
        b"#!\n",
        b"#!   \t \n",
        b"#!" + b" " * 300,  # all blanks, no newline
        b"#!/" + b"a" * 300,  # the name runs past the buffer: truncated (ENOEXEC)
        b"#!\0/bin/sh\n",  # an empty name
    ],
)
def test_not_a_script(head: bytes) -> None:
    assert ei.parse_shebang(head) is None


def test_long_line_with_a_blank_inside_the_buffer() -> None:
    # The name ends inside the buffer; the argument is cut at its end.
    head = b"#!/bin/sh " + b"a" * 400 + b"\n"
    interp, arg = ei.parse_shebang(head) or ("", None)
    assert interp == "/bin/sh" and arg == "a" * (ei.BINPRM_BUF - 1 - len(b"#!/bin/sh "))


# -- ELF -----------------------------------------------------------------------------


def test_elf_interpreter_of_this_python() -> None:
    with open(sys.executable, "rb") as f:
        head = f.read(4096)
        info = ei.elf_info(head, lambda off, n: os.pread(f.fileno(), n, off))
    assert info is not None
    interp = info[1]
    if interp is None:
        pytest.skip("a static Python")
    assert os.path.exists(interp) and "ld" in os.path.basename(interp)
    assert ei.elf_info(b"#!/bin/sh\n") is None


def test_the_hosts_loader_is_known_by_identity_and_content(tmp_path: Path) -> None:
    interp = ei._interp_of(sys.executable)
    if interp is None:
        pytest.skip("a static Python")
    loaders = ei.Loaders()
    copy = tmp_path / "innocent"
    shutil.copyfile(interp, copy)
    for path in (interp, str(copy)):
        fd = os.open(path, os.O_RDONLY)
        try:
            assert loaders.is_loader(fd, os.fstat(fd), os.pread(fd, 4096, 0), "innocent")
        finally:
            os.close(fd)
    fd = os.open(sys.executable, os.O_RDONLY)
    try:
        assert not loaders.is_loader(fd, os.fstat(fd), os.pread(fd, 4096, 0), "python3")
    finally:
        os.close(fd)


# -- the content index -------------------------------------------------------------


def _match(index: ei.ContentIndex, path: Path | str) -> ei.Original | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return index.match(fd, os.fstat(fd), os.path.realpath(path))[0]
    finally:
        os.close(fd)


def test_index_finds_copies_and_links_not_the_original(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "tool"
    tool.write_bytes(b"\x7fELF" + os.urandom(5000))
    other = bindir / "other"
    other.write_bytes(b"\x7fELF" + os.urandom(5000))  # same size, other content
    policy = _policy("  - {name: no-tool, commands: [tool], decision: deny}\n")
    index = ei.ContentIndex(policy.command_rules, [str(bindir)])
    assert set(index.by_size) == {5004}
    assert _match(index, tool) is None  # the original: its name is decided
    copy = tmp_path / "renamed"
    shutil.copyfile(tool, copy)
    link = tmp_path / "hardlink"
    os.link(tool, link)
    for f in (copy, link):
        o = _match(index, f)
        assert o is not None and o.real == str(tool)
    assert _match(index, other) is None


def test_index_skips_allow_rules_and_follows_full_paths_and_globs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("mkfs.x", "allowed", "elsewhere"))
    for f, size in ((a, 10), (b, 20), (c, 30)):
        f.write_bytes(b"x" * size)
    policy = _policy(
        "  - {name: fmt, commands: ['mkfs*'], decision: deny}\n"
        "  - {name: ok, commands: [allowed], decision: allow}\n"
        f"  - {{name: full, commands: ['{c}'], decision: approve}}\n"
    )
    index = ei.ContentIndex(policy.command_rules, [str(tmp_path)])
    assert sorted(index.by_size) == [10, 30]


def test_index_names_include_the_links_a_rule_matched(tmp_path: Path) -> None:
    real = tmp_path / "systemctl"
    real.write_bytes(b"y" * 64)
    (tmp_path / "reboot").symlink_to(real)
    policy = _policy("  - {name: power, commands: [reboot], decision: deny}\n")
    index = ei.ContentIndex(policy.command_rules, [str(tmp_path)])
    (o,) = index.by_size[64]
    assert o.real == str(real) and str(tmp_path / "reboot") in o.names
    assert _match(index, tmp_path / "reboot") is None  # the original (by its real path)


# -- whole checks ------------------------------------------------------------------


def _id_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "innocent"
    shutil.copyfile("/usr/bin/id", copy)
    copy.chmod(0o755)
    return copy


@pytest.mark.skipif(not os.path.exists("/usr/bin/id"), reason="no /usr/bin/id")
def test_judge_a_copy_a_script_and_ldso(tmp_path: Path) -> None:
    identity = ei.ExecIdentity(NO_ID, path="/usr/bin")
    me = os.getpid()
    copy = _id_copy(tmp_path)
    f = identity.judge(me, me, str(copy), str(copy), ["harmless"])
    assert f.worst() is not None and f.worst().rule == "no-id"  # type: ignore[union-attr]
    assert f.fields["same_content_as"] == "/usr/bin/id"
    script = tmp_path / "s.sh"
    script.write_text("#!/usr/bin/id -u\n")
    f = identity.judge(me, me, str(script), str(script), [str(script)])
    assert f.fields["interpreter"] == ["/usr/bin/id", "-u"]
    assert any(d.rule == "no-id" and d.decision == "deny" for d in f.decisions)
    interp = ei._interp_of("/usr/bin/id")
    if interp is not None:
        argv = [interp, "--argv0", "x", "/usr/bin/id"]
        f = identity.judge(me, me, interp, os.path.realpath(interp), argv)
        assert f.fields["via"] == "ld.so" and f.fields["runs"] == "/usr/bin/id"
        assert any(d.rule == "no-id" and d.decision == "deny" for d in f.decisions)
    true = shutil.which("true") or "/bin/true"
    assert identity.judge(me, me, true, os.path.realpath(true), ["true"]).decisions == []


def test_judge_a_memfd(tmp_path: Path) -> None:
    identity = ei.ExecIdentity(NO_ID, path="/usr/bin")
    me = os.getpid()
    fd = os.memfd_create("innocent", 0)
    try:
        os.write(fd, b"\x7fELF not a program")
        path = os.readlink(f"/proc/self/fd/{fd}")
        f = identity.judge(me, me, path, path, ["x"], empty_fd=fd)
        assert f.fields["no_file"] is True and "sha256" in f.fields
        assert [d.rule for d in f.decisions] == [ei.NO_FILE_RULE]
        link = tmp_path / "harmless"  # a link to the fd: its text names no file
        link.symlink_to(f"/proc/self/fd/{fd}")
        f = identity.judge(me, me, str(link), path, ["x"])
        assert [d.rule for d in f.decisions] == [ei.NO_FILE_RULE]
        allowing = _policy("  - {name: packed, commands: ['memfd:*'], decision: allow}\n")
        f = ei.ExecIdentity(allowing, path="/usr/bin").judge(me, me, path, path, ["x"], fd)
        assert [(d.decision, d.rule) for d in f.decisions] == [("deny", "packed")]  # not sealed
    finally:
        os.close(fd)


@pytest.mark.skipif(not os.path.exists("/usr/bin/sleep"), reason="no /usr/bin/sleep")
def test_at_exec_sees_what_the_kernel_mapped(tmp_path: Path) -> None:
    """The exec event's check reads /proc/PID/exe: a copy of a denied
    program is found even after the copy's path is gone."""
    policy = _policy("  - {name: no-sleep, commands: [sleep], decision: deny}\n")
    identity = ei.ExecIdentity(policy, path="/usr/bin")
    copy = tmp_path / "nap"
    shutil.copyfile("/usr/bin/sleep", copy)
    copy.chmod(0o755)
    p = subprocess.Popen([str(copy), "30"])
    try:
        copy.unlink()
        f = identity.at_exec(p.pid, ["nap", "30"])
        assert f.worst() is not None and f.worst().rule == "no-sleep"  # type: ignore[union-attr]
        assert f.fields["same_content_as"] == "/usr/bin/sleep"
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not os.path.exists("/usr/bin/id"), reason="no /usr/bin/id")
def test_interpreter_chains_end_where_the_kernel_stops(tmp_path: Path) -> None:
    identity = ei.ExecIdentity(NO_ID, path="/usr/bin")
    me = os.getpid()

    def chain(n: int) -> Path:
        interp = "/usr/bin/id"
        for i in range(n):
            script = tmp_path / f"s{n}-{i}"
            script.write_text(f"#!{interp}\n")
            interp = str(script)
        return Path(interp)

    # Three scripts deep, each an interpreter of the next: id is found.
    top = chain(3)
    f = identity.judge(me, me, str(top), str(top), [str(top)])
    assert any(d.rule == "no-id" for d in f.decisions)
    # Deeper than the kernel follows (it fails with ELOOP): the walk ends.
    top = chain(ei.MAX_DEPTH + 3)
    f = identity.judge(me, me, str(top), str(top), [str(top)])
    assert not any(d.rule == "no-id" for d in f.decisions)
    # A script that names itself ends too.
    loop = tmp_path / "loop"
    loop.write_text(f"#!{loop}\n")
    identity.judge(me, me, str(loop), str(loop), [str(loop)])


def test_a_multi_call_program_is_decided_by_the_name_argv0_gives(tmp_path: Path) -> None:
    real = tmp_path / "systemctl"
    real.write_bytes(b"z" * 96)
    (tmp_path / "reboot").symlink_to(real)
    policy = _policy("  - {name: power, commands: [reboot], decision: deny}\n")
    identity = ei.ExecIdentity(policy, path=str(tmp_path))
    me = os.getpid()
    f = identity.judge(me, me, str(real), str(real), ["reboot"])
    assert [d.rule for d in f.decisions] == ["power"]
    assert f.fields["argv0_is"] == str(tmp_path / "reboot")
    assert identity.judge(me, me, str(real), str(real), ["systemctl", "status"]).decisions == []
