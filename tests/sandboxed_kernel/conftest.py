"""The sandboxed kernel every test module here drives: one per module, as
root and as uid 65534."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._harness import SandboxedKernel, kernel_fixture


@pytest.fixture(scope="module", params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest) -> Iterator[SandboxedKernel]:
    yield from kernel_fixture(request)
