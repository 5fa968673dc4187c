"""File rules compiled to plain data for the native matcher (agentsh_ipy_native).

A flat array of uint32 words the C side loads once and checks for bounds:

    nrules, then per rule: opmask, nglobs, then per glob: nsegs, then per
    segment: kind (SEG_NORMAL, SEG_DSTAR), nwords, then nwords atom words
    A_LIT cp | A_ANY | A_STAR | A_CLASS negate nitems (lo hi)*nitems

Each glob is read from its normalized pattern by _glob.tokens, the same
reader as _glob's translation to a regex (the reference): ``*`` runs of code
points within a segment, ``?`` and classes one code point, ``**`` whole
segments.
Pure Python: no os calls.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from ._glob import ANY, STAR, CharClass, Literal, tokens
from ._schema import FILE_OPERATIONS, FileRule

SEG_NORMAL, SEG_DSTAR = 0, 1
A_LIT, A_ANY, A_STAR, A_CLASS = 0, 1, 2, 3

OP_BITS = {op: 1 << i for i, op in enumerate(FILE_OPERATIONS)}
"""One bit per file operation, as the table's operation masks use them."""


def _atoms(seg: str) -> list[int]:
    """One segment's atom words, from the tokens _glob's regex is made of."""
    out: list[int] = []
    for t in tokens(seg):
        if t == STAR:
            out.append(A_STAR)
        elif t == ANY:
            out.append(A_ANY)
        elif isinstance(t, CharClass):
            out += [A_CLASS, int(t.negate), len(t.ranges)]
            for lo, hi in t.ranges:
                out += [ord(lo), ord(hi)]
        else:
            assert isinstance(t, Literal)
            out += [A_LIT, ord(t.char)]
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
