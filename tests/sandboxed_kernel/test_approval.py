"""Approvals in the sandboxed kernel, as root and as uid 65534.

An ``approve`` decision (the test policy's ``ask-first`` rule: anything
under OUTSIDE/ask) is asked of the person at the frontend by the supervisor
itself, as an input_request on the outer stdin channel whose parent is the
cell's execute_request; a request without ``allow_stdin`` is denied with "no
approver available". Code inside the sandbox cannot answer its own question:
it has neither the outer connection file (its key and ports) nor a way to
make the supervisor take an answer from the inner kernel. The audit says
who decided.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy.audit import is_denial
from tests.kernel._harness import token

from ._harness import SandboxedKernel, SkCell

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


def write_code(*targets: Path) -> str:
    return "".join(
        "try:\n"
        f"    open({str(t)!r}, 'w').write('x')\n"
        f"    print({t.name!r}, 'written')\n"
        "except OSError as e:\n"
        f"    print({t.name!r}, type(e).__name__)\n"
        for t in targets
    )


def the_event(cell: SkCell, kernel: SandboxedKernel, path: Path) -> dict[str, Any]:
    """The cell's one approval event for ``path``; the log has the same."""
    found = [
        e
        for e in cell.events()
        if e["type"] == "file" and e.get("path") == str(path) and e.get("rule") == "ask-first"
    ]
    assert len(found) == 1, found
    [logged] = [e for e in kernel.jsonl() if e.get("seq") == found[0]["seq"]]
    assert (logged.get("approval"), logged["decision"], logged["cell"]) == (
        found[0].get("approval"),
        found[0]["decision"],
        cell.execution_count,
    )
    return found[0]


def test_without_stdin_an_approval_is_denied_and_says_no_approver(
    kernel: SandboxedKernel,
) -> None:
    target = kernel.area.ask / f"no-stdin-{token()}"
    start = time.monotonic()
    cell = kernel.ok(write_code(target), allow_stdin=False)
    assert time.monotonic() - start < 20, "a request without stdin waited for the timeout"
    assert cell.stdout == f"{target.name} PermissionError\n"
    assert not target.exists()
    assert cell.prompts == [], "asked on a request that does not allow stdin"
    event = the_event(cell, kernel, target)
    assert is_denial(event)
    assert "no approver" in str(event.get("approval")).lower(), event


def test_the_frontend_is_asked_on_the_cells_stdin_and_its_answer_decides(
    kernel: SandboxedKernel,
) -> None:
    yes = kernel.area.ask / f"yes-{token()}"
    no = kernel.area.ask / f"no-{token()}"
    cell = kernel.ok(write_code(yes, no), allow_stdin=True, answers=["y", "n"])
    assert cell.stdout == f"{yes.name} written\n{no.name} PermissionError\n"
    assert yes.read_text() == "x"
    assert not no.exists()
    assert len(cell.prompts) == 2, cell.prompts
    for prompt, path in zip(cell.prompts, (yes, no), strict=True):
        assert prompt["parent"] == cell.msg_id, "the question is not the cell's"
        assert str(path) in prompt["prompt"] and "ask-first" in prompt["prompt"]
        assert not prompt["password"]
    granted, refused = the_event(cell, kernel, yes), the_event(cell, kernel, no)
    assert not is_denial(granted) and granted["decision"] == "allow"
    assert is_denial(refused)
    assert "frontend" in str(granted.get("approval")), granted
    assert "frontend" in str(refused.get("approval")), refused
    assert "no approver" not in str(refused.get("approval")).lower()
    assert granted.get("approval") != refused.get("approval")


FORGE = """\
import json, threading, time
import zmq
from jupyter_client.session import Session
k = get_ipython().kernel
parent = k.get_parent('shell')
ident = k._parent_ident['shell']
report = {{}}
try:
    with open({conn!r}) as f:
        outer = json.load(f)
    report['outer connection file'] = 'read'
except OSError as e:
    outer = None
    report['outer connection file'] = type(e).__name__
stop = threading.Event()
def forge():
    # The outer stdin channel: signed with the outer key when the cell has
    # it, else unsigned; addressed as the frontend's session.
    ctx = zmq.Context.instance()
    outs = []
    if outer is not None:
        s = Session(key=outer['key'].encode(), signature_scheme=outer['signature_scheme'])
        sock = ctx.socket(zmq.DEALER)
        sock.connect(f"tcp://{{outer['ip']}}:{{outer['stdin_port']}}")
        outs.append((s, sock))
    unsigned = ctx.socket(zmq.DEALER)
    unsigned.setsockopt(zmq.IDENTITY, parent['header']['session'].encode())
    unsigned.connect('tcp://127.0.0.1:{stdin_port}')
    outs.append((Session(key=b''), unsigned))
    sent = 0
    while not stop.is_set():
        # The inner stdin channel: the inner kernel's own session and key.
        k.session.send(k.stdin_socket, 'input_reply', {{'value': 'y'}},
                       parent=parent, ident=ident)
        for s, sock in outs:
            s.send(sock, 'input_reply', {{'value': 'y'}}, parent=parent)
        sent += 1
        time.sleep(0.05)
    report['forged replies'] = sent
t = threading.Thread(target=forge)
t.start()
time.sleep(0.5)
try:
    open({target!r}, 'w').write('x')
    report['write'] = 'written'
except OSError as e:
    report['write'] = type(e).__name__
stop.set(); t.join()
print(json.dumps(report))
"""


def test_the_cell_cannot_answer_its_own_approval(kernel: SandboxedKernel) -> None:
    # The frontend answers "n", 3 s after the question; meanwhile the cell
    # sends "y" every 50 ms on every stdin channel it can reach.
    target = kernel.area.ask / f"forged-{token()}"
    with open(kernel.connection_file) as f:
        stdin_port = json.load(f)["stdin_port"]
    code = FORGE.format(conn=kernel.connection_file, stdin_port=stdin_port, target=str(target))
    cell = kernel.run(
        code, allow_stdin=True, answers=["n"], answer_delay=3, timeout=15, check=False
    )
    assert not cell.timed_out, (
        "the cell's execute_reply never reached the frontend (the cell hangs): an input_reply"
        " the cell sent on the inner stdin channel ended its request in the supervisor;"
        f" outputs: {cell.outputs}"
    )
    assert cell.reply["status"] == "ok", cell.outputs
    report = json.loads(cell.stdout.strip().splitlines()[-1])
    assert report["outer connection file"] == "PermissionError", (
        "the sandbox can read the frontend's connection file (its key and ports)"
    )
    assert report["forged replies"] >= 20, report  # the forging ran during the question
    assert report["write"] == "PermissionError", report
    assert not target.exists(), "the cell answered its own approval"
    assert len(cell.prompts) == 1 and cell.prompts[0]["parent"] == cell.msg_id
    event = the_event(cell, kernel, target)
    assert is_denial(event)
    approval = str(event.get("approval"))
    assert "frontend" in approval and "no approver" not in approval.lower(), event
