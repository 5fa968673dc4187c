"""%%agentsh and network rules by name: the session's daemon runs the proxy
and every launch gets the proxy variables; a name the policy allows is
fetched, another is refused, and both show in the cell's audit (root and
uid 65534). Loopback only: the allowed name is mapped to 127.0.0.1 by the
proxy's hosts file, and the rule's cidrs name that address."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from agentsh_ipy.supervisor._proxy import HOSTS_ENV
from tests.conftest import Area, linux_only, write_policy

from ._forms import SETUP
from ._harness import audit_events, run_driver

pytestmark = [linux_only, pytest.mark.slow]

_FETCH = """\
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=20).read()
        print(url, "fetched")
    except Exception as e:
        print(url, "refused", e)
"""


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []  # the Host of each request that arrived

    def do_GET(self) -> None:
        self.hits.append(self.headers.get("Host", ""))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    _Counting.hits = []
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def test_names_through_the_daemons_proxy(
    area: Area, server: http.server.ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.server_address[1]
    hosts = area.write("hosts", "127.0.0.1 svc.test other.test\n")
    monkeypatch.setenv(HOSTS_ENV, str(hosts))  # the daemon inherits the driver's environment
    policy = write_policy(area, f"""\
network_rules:
  - name: svc
    domains: [svc.test]
    cidrs: ["127.0.0.1/32"]
    ports: [{port}]
    decision: allow
""")  # fmt: skip
    fetch = area.write("ws/fetch.py", _FETCH)
    cell = (
        f"%%agentsh --policy {policy}\n"
        f"!{sys.executable} {fetch} http://svc.test:{port}/ http://other.test:{port}/"
    )
    r = run_driver(area, {"cells": [SETUP, cell], "config": {"audit_dir": str(area.audit.parent)}})
    events = [e for e in audit_events(r["cells"][1]) if e.get("op") == "proxy"]
    assert [(e["host"], e["decision"], e["rule"]) for e in events] == [
        ("svc.test", "allow", "svc"),
        ("other.test", "deny", "default:network"),
    ], events
    assert _Counting.hits == [f"svc.test:{port}"]  # the refused name never arrived
