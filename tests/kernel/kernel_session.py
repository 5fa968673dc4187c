"""Drive one real ipykernel through jupyter_client, one request per stdin line.

Run as the test's user (root, or uid 65534 through setpriv) by
tests/kernel/_harness.py, from a copy in the scratch area. It starts the
venv's ``python3`` kernelspec (``python -m ipykernel_launcher``, with
jupyter_client putting this interpreter in place of ``python``) in the
directory given as argv[1], then answers JSON lines:

    {"op": "execute", "code": "...", "timeout": 60, "allow_stdin": false,
     "answers": ["y"], "cell_id": "optional, sent as JupyterLab does",
     "interrupt_after": seconds (optional)}
        -> {"reply": {status, execution_count, ename, evalue},
            "outputs": [nbformat-shaped outputs, in order],
            "input_requests": [prompts], "timed_out": bool}
    {"op": "processes"}  -> {"kernel": pid, "descendants": [[pid, starttime, argv]]}
    {"op": "shutdown"}   -> {"ok": true}   (then exits)

The pytest side does every assertion; this only reports what the kernel sent.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from typing import Any

from jupyter_client.manager import KernelManager


def _output(msg: dict[str, Any]) -> dict[str, Any] | None:
    kind = msg["header"]["msg_type"]
    content = msg["content"]
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if kind in ("display_data", "update_display_data"):
        return {
            "output_type": kind,
            "data": content["data"],
            "metadata": content.get("metadata", {}),
        }
    if kind == "execute_result":
        return {
            "output_type": kind,
            "data": content["data"],
            "execution_count": content["execution_count"],
        }
    if kind == "error":
        return {
            "output_type": kind,
            "ename": content["ename"],
            "evalue": content["evalue"],
            "traceback": content["traceback"],
        }
    if kind == "clear_output":
        return {"output_type": kind}
    return None


def execute(kc: Any, km: KernelManager, request: dict[str, Any]) -> dict[str, Any]:
    allow_stdin = bool(request.get("allow_stdin", False))
    answers = list(request.get("answers", []))
    timeout = float(request.get("timeout", 60))
    content = {
        "code": request["code"],
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": False,
    }
    # JupyterLab names the cell in the request's metadata; kc.execute cannot.
    metadata = {"cellId": request["cell_id"]} if request.get("cell_id") else {}
    msg = kc.session.msg("execute_request", content, metadata=metadata)
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    deadline = time.monotonic() + timeout
    outputs: list[dict[str, Any]] = []
    prompts: list[str] = []
    idle = False
    reply: dict[str, Any] | None = None
    timed_out = False
    interrupt_at = request.get("interrupt_after")
    if interrupt_at is not None:
        interrupt_at = time.monotonic() + float(interrupt_at)
    while not (idle and reply is not None):
        if interrupt_at is not None and time.monotonic() > interrupt_at:
            km.interrupt_kernel()  # as the front end's interrupt button does
            interrupt_at = None
        if time.monotonic() > deadline:
            if timed_out:
                break  # the interrupt did not end the cell either
            timed_out = True
            km.interrupt_kernel()
            deadline = time.monotonic() + 10
        if allow_stdin:
            try:
                req = kc.stdin_channel.get_msg(timeout=0.01)
            except queue.Empty:
                pass
            else:
                prompts.append(req["content"].get("prompt", ""))
                kc.input(answers.pop(0) if answers else "")
        try:
            msg = kc.iopub_channel.get_msg(timeout=0.05)
        except queue.Empty:
            msg = None
        if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
            if msg["header"]["msg_type"] == "status":
                idle = idle or msg["content"]["execution_state"] == "idle"
            else:
                out = _output(msg)
                if out is not None:
                    out["t"] = time.monotonic()  # when it arrived: streaming shows
                    outputs.append(out)
        if reply is None:
            try:
                shell = kc.shell_channel.get_msg(timeout=0)
            except queue.Empty:
                pass
            else:
                if shell["parent_header"].get("msg_id") == msg_id:
                    c = shell["content"]
                    reply = {
                        "status": c["status"],
                        "execution_count": c.get("execution_count"),
                        "ename": c.get("ename"),
                        "evalue": c.get("evalue"),
                    }
    return {
        "reply": reply,
        "outputs": outputs,
        "input_requests": prompts,
        "timed_out": timed_out,
    }


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) of pid, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(root: int) -> list[list[Any]]:
    parent: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parent[int(name)] = st
    found: list[list[Any]] = []
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, start) in parent.items():
            if ppid == p:
                found.append([pid, start, _argv(pid)])
                frontier.append(pid)
    return found


def main() -> None:
    cwd = sys.argv[1]
    # The requests and answers get fds of their own: the kernel inherits fds
    # 0-2, echoes its output on fd 1 and may run commands that read fd 0.
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)

    def say(obj: dict[str, Any]) -> None:
        answers.write(json.dumps(obj) + "\n")
        answers.flush()

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        say({"ready": True, "kernel": km.provisioner.pid})  # type: ignore[union-attr]
        for line in requests:
            request = json.loads(line)
            op = request["op"]
            if op == "execute":
                answer: dict[str, Any] = execute(kc, km, request)
            elif op == "processes":
                pid = km.provisioner.pid  # type: ignore[union-attr]
                answer = {"kernel": pid, "descendants": descendants(pid)}
            elif op == "shutdown":
                kc.stop_channels()
                km.shutdown_kernel(now=False)
                say({"ok": True})
                return
            else:
                answer = {"error": f"unknown op {op!r}"}
            say(answer)
    finally:
        if km.is_alive():
            kc.stop_channels()
            km.shutdown_kernel(now=True)


main()
