"""Drive one kernel of a named kernelspec through jupyter_client, one request
per stdin line.

Run as the test's user (root, or uid 65534 through setpriv) by
tests/sandboxed_kernel/_harness.py, from a copy in the scratch area::

    python kernel_driver.py WORKDIR KERNEL_NAME

It starts the kernel as Jupyter would (``KernelManager(kernel_name=...)``:
the kernelspec's argv with ``{connection_file}`` filled in, in WORKDIR) and
answers JSON lines:

    {"op": "execute", "code": "...", "timeout": 60, "allow_stdin": false,
     "answers": ["y"], "answer_delay": seconds before each answer,
     "cell_id": "optional", "interrupt_after": seconds (optional)}
        -> {"msg_id": the request's id,
            "reply": {status, execution_count, ename, evalue},
            "outputs": [nbformat-shaped outputs, in order of arrival],
            "input_requests": [{"prompt", "password", "parent"}],
            "stdin_other": [msg_type of anything else on the stdin channel],
            "iopub_types": [msg_type of every iopub message while it ran],
            "timed_out": bool}
        The cell ends, as in nbclient, at the first idle status whose parent
        is the request once the execute_reply is in: what comes after that
        is not the cell's output in a notebook either.
    {"op": "processes"}  -> {"kernel": pid, "alive": bool,
                             "descendants": [[pid, starttime, argv]]}
    {"op": "restart"}    -> {"kernel": new pid, "ready": bool, "error": str|null}
    {"op": "shutdown"}   -> {"ok": true}   (then exits)

The first line it writes is {"ready": bool, "kernel": pid,
"connection_file": path, "error": str|null}.

The pytest side does every assertion; this only reports what the kernel sent.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
import traceback
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
    answer_delay = float(request.get("answer_delay", 0))
    timeout = float(request.get("timeout", 60))
    content = {
        "code": request["code"],
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": False,
    }
    metadata = {"cellId": request["cell_id"]} if request.get("cell_id") else {}
    msg = kc.session.msg("execute_request", content, metadata=metadata)
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    deadline = time.monotonic() + timeout
    outputs: list[dict[str, Any]] = []
    prompts: list[dict[str, Any]] = []
    stdin_other: list[str] = []
    iopub_types: list[str] = []  # of every iopub message, whatever its parent
    pending_answer: float | None = None  # when to send the next answer
    idle = False
    reply: dict[str, Any] | None = None
    timed_out = False
    interrupt_at = request.get("interrupt_after")
    if interrupt_at is not None:
        interrupt_at = time.monotonic() + float(interrupt_at)
    while not (idle and reply is not None):
        now = time.monotonic()
        if interrupt_at is not None and now > interrupt_at:
            km.interrupt_kernel()  # as the front end's interrupt button does
            interrupt_at = None
        if now > deadline:
            if timed_out:
                break  # the interrupt did not end the cell either
            timed_out = True
            km.interrupt_kernel()
            deadline = now + 10
        try:
            req = kc.stdin_channel.get_msg(timeout=0.01)
        except queue.Empty:
            pass
        else:
            if req["header"]["msg_type"] == "input_request":
                prompts.append(
                    {
                        "prompt": req["content"].get("prompt", ""),
                        "password": bool(req["content"].get("password", False)),
                        "parent": req["parent_header"].get("msg_id"),
                    }
                )
                if allow_stdin:
                    pending_answer = time.monotonic() + answer_delay
            else:
                stdin_other.append(req["header"]["msg_type"])
        if pending_answer is not None and time.monotonic() >= pending_answer:
            kc.input(answers.pop(0) if answers else "")
            pending_answer = None
        try:
            msg = kc.iopub_channel.get_msg(timeout=0.05)
        except queue.Empty:
            msg = None
        if msg is not None:
            iopub_types.append(msg["header"]["msg_type"])
        if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
            if msg["header"]["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    idle = True
            elif not idle:  # nbclient stops collecting at the first idle
                out = _output(msg)
                if out is not None:
                    out["t"] = time.monotonic()
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
        "msg_id": msg_id,
        "reply": reply,
        "outputs": outputs,
        "input_requests": prompts,
        "stdin_other": stdin_other,
        "iopub_types": iopub_types,
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


def kernel_pid(km: KernelManager) -> int | None:
    prov = km.provisioner
    return None if prov is None else prov.pid  # type: ignore[attr-defined,no-any-return]


def main() -> None:
    cwd, kernel_name = sys.argv[1], sys.argv[2]
    # The requests and answers get fds of their own: the kernel inherits fds
    # 0-2 and may write to fd 1.
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)

    def say(obj: dict[str, Any]) -> None:
        answers.write(json.dumps(obj) + "\n")
        answers.flush()

    km = KernelManager(kernel_name=kernel_name)
    kc: Any = None
    try:
        km.start_kernel(cwd=cwd)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=90)
    except Exception as e:
        traceback.print_exc()
        say(
            {
                "ready": False,
                "kernel": kernel_pid(km),
                "connection_file": km.connection_file,
                "error": f"{type(e).__name__}: {e}",
            }
        )
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        return
    say(
        {
            "ready": True,
            "kernel": kernel_pid(km),
            "connection_file": km.connection_file,
            "error": None,
        }
    )
    try:
        for line in requests:
            request = json.loads(line)
            op = request["op"]
            if op == "execute":
                answer: dict[str, Any] = execute(kc, km, request)
            elif op == "processes":
                pid = kernel_pid(km)
                answer = {
                    "kernel": pid,
                    "alive": km.is_alive(),
                    "descendants": [] if pid is None else descendants(pid),
                }
            elif op == "restart":
                error = None
                try:
                    km.restart_kernel(now=False)
                    kc.wait_for_ready(timeout=90)
                except Exception as e:
                    traceback.print_exc()
                    error = f"{type(e).__name__}: {e}"
                answer = {"kernel": kernel_pid(km), "ready": error is None, "error": error}
            elif op == "shutdown":
                kc.stop_channels()
                km.shutdown_kernel(now=False)
                say({"ok": True})
                return
            else:
                answer = {"error": f"unknown op {op!r}"}
            say(answer)
    finally:
        if km.has_kernel:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


main()
