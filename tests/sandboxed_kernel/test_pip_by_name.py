"""`%pip install` in the sandboxed kernel under a policy that allows an
index by name (issue 15), as root and as uid 65534: the package installs
into the workspace through the supervisor's proxy and imports; the same
cell against a name no rule allows fails, the deny in the cell's audit.

Loopback only: the index is served by the test on 127.0.0.1, its names
mapped there by the proxy's hosts file; the rule's cidrs name the address
(a name resolving to loopback is refused otherwise)."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsh_ipy.policy import example_policy_text
from agentsh_ipy.supervisor._proxy import HOSTS_ENV
from tests.integration.test_domains import PKG, _wheel

from ._harness import SandboxedKernel, make_user, sandboxed_area, sk_env, write_kernelspec

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A package index for PKG on 127.0.0.1; its port."""
    root = tmp_path_factory.mktemp("index")
    simple = root / "simple" / PKG
    simple.mkdir(parents=True)
    wheel = _wheel(root)
    (simple / "index.html").write_text(f'<a href="../../{wheel.name}">{wheel.name}</a>\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest, index: int) -> Iterator[SandboxedKernel]:
    area = sandboxed_area(make_user(request.param))
    rule = (
        "  - name: test-index\n"
        "    domains: [index.test]\n"
        '    cidrs: ["127.0.0.1/32"]\n'
        f"    ports: [{index}]\n"
        "    decision: allow\n"
    )
    text = example_policy_text("pypi").replace("\nnetwork_rules:\n", "\nnetwork_rules:\n" + rule)
    policy = area.write("ws/pypi.yaml", text)
    hosts = area.write("hosts", "127.0.0.1 index.test other.test\n")
    write_kernelspec(area, policy=policy, audit=area.audit)
    k: SandboxedKernel | None = None
    try:
        k = SandboxedKernel(area, env=sk_env(area, **{HOSTS_ENV: str(hosts)}))
        yield k
    finally:
        if k is not None:
            k.shutdown()
        area.cleanup()


def _pip(name: str, port: int) -> str:
    return (
        "%pip install --no-cache-dir --disable-pip-version-check --no-deps --retries 0"
        f" --index-url http://{name}:{port}/simple --trusted-host {name} --target ./lib {PKG}"
    )


def test_pip_install_from_an_allowed_name(kernel: SandboxedKernel, index: int) -> None:
    cell = kernel.run(_pip("index.test", index), timeout=120)
    assert "Successfully installed" in cell.stdout, cell.outputs
    proxied = [e for e in cell.events() if e.get("op") == "proxy"]
    assert proxied and {(e["host"], e["decision"], e["rule"]) for e in proxied} == {
        ("index.test", "allow", "test-index")
    }
    cell = kernel.run(f"import sys; sys.path.insert(0, 'lib'); import {PKG}; print({PKG}.VALUE)")
    assert cell.stdout.strip() == "42"
    assert Path(kernel.area.ws / "lib" / PKG / "__init__.py").exists()

    cell = kernel.run(_pip("other.test", index), timeout=120)
    assert "Successfully installed" not in cell.stdout
    denied = [e for e in cell.events() if e.get("op") == "proxy"]
    assert denied and {(e["host"], e["decision"], e["rule"]) for e in denied} == {
        ("other.test", "deny", "default:network")
    }
