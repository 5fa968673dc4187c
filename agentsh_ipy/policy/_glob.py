"""Glob patterns compiled to anchored regular expressions.

Three dialects share one translator:

* path globs (file rules, unix socket paths, command paths): absolute; ``*``
  and ``?`` never match ``/``; ``**`` must be a whole segment and matches
  path segments.  A trailing ``/**`` matches one or more segments (so
  ``/a/**`` matches ``/a/x`` and ``/a/x/y`` but NOT ``/a`` itself); a leading
  or inner ``**`` matches zero or more (so ``/**/.env`` matches ``/.env`` and
  ``/a/b/.env``).
* name globs (env variable names, command basenames): ``*`` matches any run of
  characters, ``?`` any one character.
* abstract unix socket globs: ``@`` followed by a name glob (abstract names
  are not paths, so ``*`` crosses ``/`` there).

All dialects accept ``[abc]``, ``[a-z]`` and ``[!abc]`` / ``[^abc]`` classes;
``]`` first in a class is literal, so ``[[]`` matches ``[``.  There is no
backslash escape: :func:`escape` brackets the metacharacters instead.

``fnmatch`` is not used: it has no notion of path segments, and its
translation is a moving target across Python versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_SEGMENT_CHAR = "[^/]"


class GlobError(ValueError):
    """A malformed glob; ``str()`` is the reason, without the pattern."""


def escape(text: str) -> str:
    """Make ``text`` match only itself when spliced into a glob."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


STAR, ANY = "*", "?"
"""Tokens of a glob fragment besides literal characters and classes."""


@dataclass(frozen=True)
class CharClass:
    """``[...]``: inclusive code point ranges, or their complement."""

    negate: bool
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Literal:
    char: str


def tokens(seg: str) -> list[str | CharClass | Literal]:
    """One glob fragment (no ``**`` segments) read once, for every consumer
    (the regex here, the native matcher's table): STAR for a run of ``*``,
    ANY, a CharClass, or a Literal character."""
    out: list[str | CharClass | Literal] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            # Runs of '*' inside a fragment mean the same as one '*'.
            while i < n and seg[i] == "*":
                i += 1
            out.append(STAR)
            continue
        if c == "?":
            out.append(ANY)
        elif c == "[":
            j = i + 1
            negate = j < n and seg[j] in "!^"
            if negate:
                j += 1
            k = j + 1 if j < n and seg[j] == "]" else j  # ']' first is literal
            while k < n and seg[k] != "]":
                k += 1
            if k >= n:
                raise GlobError("unterminated '['")
            out.append(CharClass(negate, _ranges(seg[j:k])))
            i = k + 1
            continue
        else:
            out.append(Literal(c))
        i += 1
    return out


def _ranges(body: str) -> tuple[tuple[str, str], ...]:
    items: list[tuple[str, str]] = []
    p = 0
    while p < len(body):
        if p + 2 < len(body) and body[p + 1] == "-":
            lo, hi = body[p], body[p + 2]
            if lo > hi:
                raise GlobError(f"bad range '{lo}-{hi}' in '[...]'")
            items.append((lo, hi))
            p += 3
        else:
            items.append((body[p], body[p]))
            p += 1
    return tuple(items)


def _translate(seg: str, star: str, one: str, no_slash: bool) -> str:
    """Translate one glob fragment (no ``**`` segments) to regex source."""
    out: list[str] = []
    for t in tokens(seg):
        if t == STAR:
            out.append(star)
        elif t == ANY:
            out.append(one)
        elif isinstance(t, CharClass):
            out.append(_char_class(t, no_slash))
        else:
            assert isinstance(t, Literal)
            out.append(re.escape(t.char))
    return "".join(out)


def _char_class(cls: CharClass, no_slash: bool) -> str:
    inner = "".join(
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in cls.ranges
    )
    if cls.negate:
        return f"[^{'/' if no_slash else ''}{inner}]"
    # A range such as '[+-0]' covers '/'; a segment must still not cross it.
    return f"(?:(?!/)[{inner}])" if no_slash else f"[{inner}]"


@dataclass(frozen=True)
class Glob:
    """A translated glob: ``pattern`` is the normalized glob text, ``source``
    its anchored regex. Compiled on first use: a rule matches all its globs
    with one regex of its own, so most never need theirs."""

    pattern: str
    source: str
    flags: int = 0

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.source, self.flags)

    def matches(self, text: str) -> bool:
        return self.regex.fullmatch(text) is not None


def compile_path(pattern: str) -> Glob:
    """Compile an absolute path glob.

    Duplicate slashes and a trailing slash are normalized away; ``.`` and
    ``..`` segments are refused because they can never match the normalized
    paths the engine is given (a deny rule that silently never fires is
    worse than an error).
    """
    if not pattern:
        raise GlobError("empty pattern")
    if pattern.startswith("~"):
        raise GlobError("'~' is not expanded; write ${HOME} instead")
    if not pattern.startswith("/"):
        hint = "; write ${NAME} for a variable" if pattern.startswith("$") else ""
        raise GlobError(f"not an absolute path{hint}")
    segments: list[str] = []
    for seg in pattern.split("/"):
        if not seg:
            continue
        if seg in (".", ".."):
            raise GlobError(f"'{seg}' segments never match a normalized path")
        if "**" in seg and seg != "**":
            raise GlobError("'**' must be a whole path segment, as in '/a/**/b'")
        if seg == "**" and segments and segments[-1] == "**":
            continue  # '**/**' is the same as '**'
        segments.append(seg)

    parts: list[str] = []
    need_slash = True
    for i, seg in enumerate(segments):
        if seg == "**":
            if i == len(segments) - 1:
                # Trailing: one or more segments below, not the directory itself.
                parts.append(f"/{_SEGMENT_CHAR}+(?:/{_SEGMENT_CHAR}+)*")
            else:
                # Leading or inner: zero or more whole segments.
                parts.append(f"/(?:{_SEGMENT_CHAR}+/)*")
                need_slash = False
            continue
        translated = _translate(seg, f"{_SEGMENT_CHAR}*", _SEGMENT_CHAR, no_slash=True)
        parts.append(("/" if need_slash else "") + translated)
        need_slash = True
    source = "".join(parts) or "/"
    return Glob("/" + "/".join(segments), rf"\A{source}\Z")


def literal(pattern: str) -> tuple[str, bool] | None:
    """What a path glob matches when no wildcard is involved: (path,
    False) for exactly that path, (dir, True) for everything below dir
    (``/dir/**``); None otherwise (``/**`` included). escape()'s
    brackets count as the character they hold."""
    tree = pattern.endswith("/**") and pattern != "/**"
    body = pattern[:-3] if tree else pattern
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c in "*?":
            return None
        if c == "[":
            if body[i + 2 : i + 3] == "]" and body[i + 1 : i + 2] in ("*", "?", "["):
                out.append(body[i + 1])
                i += 3
                continue
            return None
        out.append(c)
        i += 1
    return "".join(out), tree


def compile_name(pattern: str) -> Glob:
    """Compile a flat name glob (environment names, command basenames)."""
    if not pattern:
        raise GlobError("empty pattern")
    source = _translate(pattern, ".*", ".", no_slash=False)
    return Glob(pattern, rf"\A{source}\Z", re.DOTALL)


def compile_abstract(pattern: str) -> Glob:
    """Compile an abstract unix socket glob, ``@`` followed by a name glob."""
    if not pattern.startswith("@"):
        raise GlobError("an abstract socket pattern starts with '@'")
    if pattern == "@":
        raise GlobError("empty abstract socket name")
    source = _translate(pattern[1:], ".*", ".", no_slash=False)
    return Glob(pattern, rf"\A@{source}\Z", re.DOTALL)


def normalize_path(path: str) -> str:
    """Lexically normalize an absolute path: collapse ``//``, drop ``.``,
    resolve ``..``, strip a trailing slash.

    Callers are meant to pass normalized paths already; this is a cheap
    safety net so that ``/w/../home/u/.ssh/id_rsa`` can never match ``/w/**``.
    A relative path is returned unchanged (no absolute rule can match it).
    """
    if not path.startswith("/"):
        return path
    if "//" not in path and "/." not in path and (path == "/" or not path.endswith("/")):
        return path  # already normalized (the common case: a resolved path)
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)
