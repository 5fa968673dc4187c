"""The README's policy example is a valid policy, and its first command is
the one the README promises (a demo notebook run in the sandboxed kernel)."""

from __future__ import annotations

import re
from pathlib import Path

from agentsh_ipy.policy import Policy

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_policy_example_parses() -> None:
    text = README.read_text()
    [example] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    variables = {"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"}
    p = Policy.parse(example, "README.md", variables)
    assert p.check_file("delete", "/w/x").decision == "soft_delete"
    assert p.check_command("/usr/bin/curl", ["curl", "x"]).redirect == (
        "/bin/echo",
        "downloads are off in this sandbox",
    )
    assert p.limits.max_processes == 256 and p.limits.wall_clock == 600
    assert [(u.name, u.reason) for u in p.unprotect] == [
        ("python-env", "cells pip install into ./.venv with its own pip")
    ]


def test_readme_starts_with_the_two_setup_commands() -> None:
    lines = README.read_text().splitlines()
    assert lines[2] == "```sh"
    assert lines[3] == "pip install . && agentsh-ipy run notebooks/sandboxed_kernel.ipynb"
    assert lines[4] == "pip install '.[test]' && python -m pytest"
    assert lines[5] == "```"
