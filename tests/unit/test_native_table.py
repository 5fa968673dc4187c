"""The native file-rule matcher (agentsh_ipy/_native.c, fed by
policy/_table.py) against the Python engine, the reference: the same
decision and rule on generated policies and paths, and a malformed table
refused. The package build compiles the extension, so it must load here."""

from __future__ import annotations

import contextlib
import os
from array import array

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

# A failure, not a skip: `pip install .` builds it (a top-level module, so
# the checkout's agentsh_ipy, which the tests import, uses the installed one).
import agentsh_ipy_native as _native
from agentsh_ipy import policy
from agentsh_ipy.policy._glob import GlobError, compile_path
from agentsh_ipy.policy._schema import FILE_OPERATIONS, FileRule
from agentsh_ipy.policy._table import OP_BITS, compile_file_rules
from agentsh_ipy.supervisor import _fast

PATH_MAX = 4096

# Characters that exercise the parsers: glob metacharacters, '.', '-' and
# ']' inside classes, non-ASCII (several UTF-8 bytes), and bytes no UTF-8
# decodes (surrogate escapes, as os.fsdecode gives them).
_CHARS = ["a", "b", "é", "✓", "\U0001f600", ".", "-", "]", "!", "^", "\udcff", "\udc80", " "]
_NAME = st.text(st.sampled_from(_CHARS), min_size=1, max_size=4)


@st.composite
def _glob_segment(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["name", "star", "any", "class", "dstar", "mixed"]))
    if kind == "dstar":
        return "**"
    if kind == "star":
        return draw(st.sampled_from(["*", "a*", "*b", "*.*", "*a*"]))
    if kind == "any":
        return draw(st.sampled_from(["?", "a?", "??", "?*"]))
    if kind == "class":
        body = draw(
            st.sampled_from(
                ["a-c", "!a", "^a", "]a", "!]", "+-0", "é-✓", "\udc80-\udcff", "-a", "a-", "ab"]
            )
        )
        return "[" + body + "]" + draw(st.sampled_from(["", "*", "a"]))
    if kind == "mixed":
        return draw(_NAME) + draw(st.sampled_from(["*", "?", "[ab]"])) + draw(_NAME)
    return draw(_NAME)


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    segs = draw(st.lists(_glob_segment(), max_size=4))
    return "/" + "/".join(segs) + draw(st.sampled_from(["", "/"]))


@st.composite
def _rule(draw: st.DrawFn, index: int) -> FileRule:
    globs = []
    for p in draw(st.lists(_pattern(), min_size=1, max_size=3)):
        with contextlib.suppress(GlobError):  # the generator makes some bad globs
            globs.append(compile_path(p))
    assume(globs)
    ops = draw(st.frozensets(st.sampled_from(FILE_OPERATIONS), min_size=1))
    decision = draw(st.sampled_from(["allow", "deny", "audit", "approve"]))
    return FileRule(f"r{index}", tuple(globs), ops, decision)


@st.composite
def _policy(draw: st.DrawFn) -> policy.Policy:
    n = draw(st.integers(0, 5))
    rules = tuple(draw(_rule(i)) for i in range(n))
    base = policy.Policy(name="t", source="<test>")
    return base.__class__(name="t", source="<test>", defaults=base.defaults, file_rules=rules)


@st.composite
def _path(draw: st.DrawFn) -> str:
    seg = st.one_of(_NAME, st.sampled_from(["", ".", "..", "a", "b", "*", "[", "?"]))
    segs = draw(st.lists(seg, max_size=8))
    lead = draw(st.sampled_from(["/", "/", "/", "//", ""]))  # "" : a relative path
    return lead + "/".join(segs) + draw(st.sampled_from(["", "/", "//", "/."]))


def _same(p: policy.Policy, op: str, path: str) -> None:
    decider = _fast.FileDecider(p)
    assert decider.on, decider.why
    want = p.check_file(op, path)
    got = decider.check_file(op, path)
    assert (got.decision, got.rule) == (want.decision, want.rule), (op, path)


@pytest.fixture(autouse=True)
def _fast_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_fast.ENV, raising=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=_policy(), op=st.sampled_from(FILE_OPERATIONS), paths=st.lists(_path(), max_size=6))
@example(p=policy.Policy(name="t", source="<test>"), op="read", paths=["/"])
def test_c_matcher_agrees_with_python(p: policy.Policy, op: str, paths: list[str]) -> None:
    # Paths built from the policy's own literal text too, so rules match often.
    for r in p.file_rules:
        for g in r.globs:
            lit = g.pattern.replace("**", "x").replace("*", "y").replace("?", "z")
            paths += [lit, lit + "/q", lit.rsplit("/", 1)[0] or "/"]
    for path in paths:
        _same(p, op, path)


# Hand-picked corners: the root, '**' around it, classes covering '/',
# '..' walking out, non-UTF-8 bytes, a path of PATH_MAX bytes.
_CORNERS = [
    ("/", ["/", "/a", "//", "/.", "/..", "a"]),
    ("/*", ["/", "/a", "/a/b", "//", "/./"]),
    ("/**", ["/", "/a", "/a/b/c"]),
    ("/**/*", ["/", "/a", "/a/b"]),
    ("/**/a", ["/a", "/x/a", "/x/y/a", "/", "/b"]),
    ("/a/**/b/**", ["/a/b", "/a/b/c", "/a/x/b/c", "/a/b/b/c"]),
    ("/a/[+-0]", ["/a/+", "/a/,", "/a/.", "/a/0", "/a//"]),
    ("/w/**", ["/w/../home/.ssh/id", "/w/x/../../etc/passwd", "/w/./x", "/w//x/"]),
    ("/a/\udcff*", [os.fsdecode(b"/a/\xff\xfe"), os.fsdecode(b"/a/\xc3"), "/a/ÿ"]),
    ("/a/?", [os.fsdecode(b"/a/\xe2\x82"), "/a/€", os.fsdecode(b"/a/\xed\xa0\x80")]),
    ("/a/[!é]", ["/a/é", "/a/e", os.fsdecode(b"/a/\xc3")]),
    ("/p/**", ["/p" + "/d" * ((PATH_MAX - 2) // 2), "/p/" + "x" * (PATH_MAX - 3)]),
]


@pytest.mark.parametrize(("pattern", "paths"), _CORNERS)
def test_corners(pattern: str, paths: list[str]) -> None:
    for ops in (FILE_OPERATIONS, ("read",)):
        rule = FileRule("r", (compile_path(pattern),), frozenset(ops), "deny")
        p = policy.Policy(name="t", source="<test>", file_rules=(rule,))
        for path in paths:
            for op in ("read", "write"):
                _same(p, op, path)


def test_the_default_policy_agrees() -> None:
    p = policy.Policy.parse(
        policy.default_policy_text(), "default.yaml",
        {"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"},
    )  # fmt: skip
    paths = ["/w/a.py", "/home/u/.ssh/id_rsa", "/etc/passwd", "/usr/lib/x.so", "/tmp/x",
             "/home/u/.bashrc", "/w/../home/u/.ssh/id_rsa", "/proc/self/status", "/"]  # fmt: skip
    for op in FILE_OPERATIONS:
        for path in paths:
            _same(p, op, path)


@pytest.mark.parametrize(
    "words",
    [
        [],
        [1],  # a rule with no mask
        [1, 1, 1, 1, 0, 5, 0],  # atoms run past the end
        [1, 1, 1, 1, 7, 0],  # an unknown segment kind
        [1, 1, 1, 1, 0, 3, 3, 0, 9],  # a class with more items than words
        [0, 0],  # words after the program
    ],
)
def test_malformed_program_refused(words: list[int]) -> None:
    with pytest.raises(ValueError, match="file table"):
        _native.FileTable(array("I", words).tobytes())


def test_forced_off_uses_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fast.ENV, "0")
    assert _fast.status() == f"off: switched off ({_fast.ENV}=0)"
    p = policy.Policy(name="t", source="<test>")
    d = _fast.FileDecider(p)
    assert not d.on
    assert d.check_file("read", "/x").rule == "default:file"


def test_op_bits_cover_every_operation() -> None:
    assert set(OP_BITS) == set(FILE_OPERATIONS)
    assert compile_file_rules(()) == array("I", [0]).tobytes()


def test_missing_extension_falls_back_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "agentsh_ipy_native", None)  # import fails
    assert _fast.status().startswith("off: the extension agentsh_ipy_native does not load: ")
    p = policy.Policy(name="t", source="<test>")
    d = _fast.FileDecider(p)
    assert not d.on
    assert d.why.startswith("the extension agentsh_ipy_native does not load")
    assert d.check_file("write", "/x") == p.check_file("write", "/x")
