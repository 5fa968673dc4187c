"""File rules compiled to plain data for the native matcher (agentsh_ipy_native).

A flat array of uint32 words the C side loads once and checks for bounds:

    nrules, then per rule: opmask, nglobs, then per glob: nsegs, then per
    segment: kind (SEG_NORMAL, SEG_DSTAR), nwords, then nwords atom words
    A_LIT cp | A_ANY | A_STAR | A_CLASS negate nitems (lo hi)*nitems

Each glob is parsed here from its normalized pattern with the same rules as
_glob's translation to a regex (the reference): ``*`` runs of code points
within a segment, ``?`` and classes one code point, ``**`` whole segments.
Pure Python: no os calls.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from ._schema import FILE_OPERATIONS, FileRule

SEG_NORMAL, SEG_DSTAR = 0, 1
A_LIT, A_ANY, A_STAR, A_CLASS = 0, 1, 2, 3

OP_BITS = {op: 1 << i for i, op in enumerate(FILE_OPERATIONS)}
"""One bit per file operation, as the table's operation masks use them."""


def _class_items(body: str) -> list[int]:
    """(lo, hi) pairs, flattened, as _glob._char_class reads ``body``."""
    items: list[int] = []
    p = 0
    while p < len(body):
        if p + 2 < len(body) and body[p + 1] == "-":
            items += [ord(body[p]), ord(body[p + 2])]
            p += 3
        else:
            items += [ord(body[p]), ord(body[p])]
            p += 1
    return items


def _atoms(seg: str) -> list[int]:
    """One segment's atom words, as _glob._translate reads it."""
    out: list[int] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            while i < n and seg[i] == "*":
                i += 1
            out.append(A_STAR)
            continue
        if c == "?":
            out.append(A_ANY)
        elif c == "[":
            j = i + 1
            negate = j < n and seg[j] in "!^"
            if negate:
                j += 1
            k = j + 1 if j < n and seg[j] == "]" else j
            while k < n and seg[k] != "]":
                k += 1
            if k >= n:  # compile_path refused it already
                raise ValueError(f"unterminated '[' in {seg!r}")
            items = _class_items(seg[j:k])
            out += [A_CLASS, int(negate), len(items) // 2, *items]
            i = k + 1
            continue
        else:
            out += [A_LIT, ord(c)]
        i += 1
    return out


def _glob_words(pattern: str) -> list[int]:
    segs = [s for s in pattern.split("/") if s]
    words = [len(segs)]
    for seg in segs:
        if seg == "**":
            words += [SEG_DSTAR, 0]
        else:
            atoms = _atoms(seg)
            words += [SEG_NORMAL, len(atoms), *atoms]
    return words


def compile_file_rules(rules: Sequence[FileRule]) -> bytes:
    """The program for ``rules``, in order (first match wins); the C side
    answers with an index into ``rules``."""
    words = [len(rules)]
    for rule in rules:
        mask = 0
        for op in rule.operations:
            mask |= OP_BITS[op]
        words += [mask, len(rule.globs)]
        for g in rule.globs:
            words += _glob_words(g.pattern)
    return array("I", words).tobytes()
