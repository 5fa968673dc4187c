"""Glob semantics of the policy layer (agentsh_ipy.policy._glob)."""

from __future__ import annotations

import pytest

from agentsh_ipy.policy._glob import (
    GlobError,
    compile_abstract,
    compile_name,
    compile_path,
    escape,
    normalize_path,
)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # '*' stays within one segment
        ("/a/*", "/a/x", True),
        ("/a/*", "/a/.hidden", True),
        ("/a/*", "/a/x/y", False),
        ("/a/*", "/a", False),
        ("/a/*.py", "/a/m.py", True),
        ("/a/*.py", "/a/b/m.py", False),
        ("/a/x*", "/a/x", True),
        ("/a/x*", "/ab/x", False),
        # '?' is exactly one non-slash character
        ("/a/?", "/a/x", True),
        ("/a/?", "/a/xy", False),
        ("/a?b", "/a/b", False),
        # trailing '**': everything below, not the directory itself
        ("/a/**", "/a/x", True),
        ("/a/**", "/a/x/y/z", True),
        ("/a/**", "/a", False),
        ("/a/**", "/ab", False),
        ("/a/**", "/ab/x", False),
        ("/**", "/x", True),
        ("/**", "/x/y", True),
        ("/**", "/", False),
        ("/", "/", True),
        ("/", "/x", False),
        # leading / inner '**': zero or more segments
        ("/**/.env", "/.env", True),
        ("/**/.env", "/w/.env", True),
        ("/**/.env", "/w/a/b/.env", True),
        ("/**/.env", "/w/.envrc", False),
        ("/**/.env", "/w/x.env", False),
        ("/**/.env.*", "/w/.env.local", True),
        ("/**/.env.*", "/.env.local", True),
        ("/**/.env.*", "/w/.env", False),
        ("/a/**/b", "/a/b", True),
        ("/a/**/b", "/a/x/y/b", True),
        ("/a/**/b", "/a/x/bb", False),
        ("/a/**/**/b", "/a/b", True),
        ("/a/**/*.py", "/a/m.py", True),
        ("/a/**/*.py", "/a/p/q/m.py", True),
        # classes
        ("/a/[abc]", "/a/b", True),
        ("/a/[abc]", "/a/d", False),
        ("/a/[!abc]", "/a/d", True),
        ("/a/[!abc]", "/a/a", False),
        ("/a/[^abc]", "/a/d", True),
        ("/a/[a-c]x", "/a/bx", True),
        ("/a/[]]", "/a/]", True),
        ("/a/[[]", "/a/[", True),
        ("/a[+-0]b", "/a/b", False),  # a range covering '/' still stops at it
        ("/a[+-0]b", "/a.b", True),
        # regex metacharacters are literal
        ("/a/x.y", "/a/xzy", False),
        ("/a/x+(y)", "/a/x+(y)", True),
        ("/a/$x^", "/a/$x^", True),
        # normalization of the pattern
        ("//a///b/", "/a/b", True),
        ("/a/", "/a", True),
    ],
)
def test_path_glob(pattern: str, path: str, expected: bool) -> None:
    assert compile_path(pattern).matches(path) is expected


def test_path_glob_is_anchored_against_trailing_newline() -> None:
    # '$' in a regex also matches before a final newline; the compiled glob
    # must not, or "/etc/shadow\n" style names could dodge or hit rules.
    glob = compile_path("/etc/shadow")
    assert not glob.matches("/etc/shadow\n")
    assert glob.regex.match("/etc/shadow\n") is None
    assert glob.regex.match("/etc/shadowx") is None


def test_path_glob_normalized_source() -> None:
    assert compile_path("//a///b/").pattern == "/a/b"
    assert compile_path("/a/**/**").pattern == "/a/**"
    assert compile_path("/").pattern == "/"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty pattern"),
        ("a/b", "not an absolute path"),
        ("*.py", "not an absolute path"),
        ("$HOME/x", "write ${NAME}"),
        ("~/x", "write ${HOME}"),
        ("~", "write ${HOME}"),
        ("/a/[bc", "unterminated '['"),
        ("/a/[!]", "unterminated '['"),
        ("/a**b", "'**' must be a whole path segment"),
        ("/a/**b", "'**' must be a whole path segment"),
        ("/a/b**", "'**' must be a whole path segment"),
        ("/a/***", "'**' must be a whole path segment"),
        ("/a/[z-a]", "bad range"),
        ("/a/../b", "'..' segments"),
        ("/a/./b", "'.' segments"),
    ],
)
def test_bad_path_glob(pattern: str, reason: str) -> None:
    with pytest.raises(GlobError, match=None) as info:
        compile_path(pattern)
    assert reason in str(info.value)


def test_escape_makes_metacharacters_literal() -> None:
    weird = "/home/u/my[proj]*?"
    glob = compile_path(escape(weird) + "/**")
    assert glob.matches(weird + "/x")
    assert not glob.matches("/home/u/myp]ab/x")
    assert compile_path(escape("/a/**")).matches("/a/**")
    assert not compile_path(escape("/a/**")).matches("/a/b")


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*_TOKEN", "GITHUB_TOKEN", True),
        ("*_TOKEN", "_TOKEN", True),
        ("*_TOKEN", "GITHUB_TOKENS", False),
        ("*_TOKEN", "github_token", False),  # case-sensitive
        ("*_SECRET*", "AWS_SECRET_ACCESS_KEY", True),
        ("AWS_*", "AWS_REGION", True),
        ("AWS_*", "XAWS_REGION", False),
        ("?OME", "HOME", True),
        ("?OME", "HHOME", False),
        ("mkfs*", "mkfs.ext4", True),
        ("mkfs*", "mkfs", True),
        ("python3.[0-9]*", "python3.11", True),
        ("a/*", "a/b/c", True),  # names are flat: '*' crosses '/'
    ],
)
def test_name_glob(pattern: str, name: str, expected: bool) -> None:
    assert compile_name(pattern).matches(name) is expected


def test_bad_name_glob() -> None:
    with pytest.raises(GlobError, match="empty pattern"):
        compile_name("")
    with pytest.raises(GlobError, match=r"unterminated '\['"):
        compile_name("AWS_[")


def test_abstract_glob() -> None:
    assert compile_abstract("@*").matches("@foo")
    assert compile_abstract("@*").matches("@/tmp/.X11-unix/X0")
    assert compile_abstract("@/tmp/.X11-unix/*").matches("@/tmp/.X11-unix/X0")
    assert not compile_abstract("@*").matches("/run/x.sock")
    assert not compile_abstract("@foo").matches("@foobar")
    with pytest.raises(GlobError, match="empty abstract"):
        compile_abstract("@")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("/a/b/", "/a/b"),
        ("//a//b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/w/../home/u/.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
        ("/../../etc", "/etc"),
        ("relative/x", "relative/x"),
    ],
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected
