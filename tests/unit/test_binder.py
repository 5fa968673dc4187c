"""binder/ builds an environment with this repository and the sandboxed
kernel's kernelspec, and the README's badge opens the quickstart."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"


def _lines(path: Path) -> list[str]:
    stripped = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in stripped if line]


def test_requirements_install_this_repository() -> None:
    # repo2docker runs pip from the repository's root: "." is this repository.
    assert _lines(BINDER / "requirements.txt") == ["."]


def test_runtime_satisfies_requires_python() -> None:
    # With a binder/ folder repo2docker ignores pyproject's requires-python
    # and would pick its default Python.
    [runtime] = _lines(BINDER / "runtime.txt")
    major, minor = map(int, re.fullmatch(r"python-(\d+)\.(\d+)", runtime).groups())  # type: ignore[union-attr]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    low = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    assert low is not None
    assert (major, minor) >= (int(low[1]), int(low[2]))


def test_postbuild_installs_the_kernelspec() -> None:
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    assert "agentsh-ipy kernel install --sys-prefix" in _lines(post)


def test_readme_says_where_binder_opens_and_how_to_try_it_locally() -> None:
    # No badge until the project has a public repository (issue 19 item 6):
    # the README gives the link's form and the same image locally.
    readme = (REPO / "README.md").read_text()
    assert "no public repository" in readme
    urls = re.findall(r"https://mybinder\.org/v2/gh/[^`)\s]+", readme)
    assert urls, "the Binder link's form"
    assert all(u.endswith("/HEAD?labpath=notebooks%2Fquickstart.ipynb") for u in urls), urls
    assert (REPO / "notebooks" / "quickstart.ipynb").exists()
    assert "repo2docker" in readme
    assert "docker build -f docker/Dockerfile" in readme
    assert (REPO / "docker" / "Dockerfile").exists()
