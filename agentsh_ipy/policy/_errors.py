"""The one exception the policy layer raises for a bad policy file."""

from __future__ import annotations

from collections.abc import Iterable

Problem = tuple[str, int, str]
"""(source, 1-based line or 0 when unknown, reason)."""


class PolicyError(Exception):
    """A policy could not be loaded.

    Carries every problem found, not just the first, so a user can fix the
    whole file in one pass.  ``str()`` gives one ``FILE:LINE: reason`` line
    per problem, the format editors and CI logs know how to link.
    """

    problems: list[Problem]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        if not self.problems:
            raise ValueError("PolicyError needs at least one problem")
        super().__init__(
            "\n".join(f"{source}:{line}: {reason}" for source, line, reason in self.problems)
        )
