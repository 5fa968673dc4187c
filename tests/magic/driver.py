"""Run cells in an in-process InteractiveShell with the extension loaded.

    python driver.py SPEC.json RESULT.json

SPEC: {"repo": dir to import agentsh_ipy from, "fake": bool, "config": {trait:
value}, "cells": [code, ...], "values": name of a dict in user_ns to return,
"unload": bool}. RESULT: per-cell success/stdout/stderr/display outputs, the
values, the fake client's wrap calls, whether unload restored every hooked
object by identity, and the child processes left after unload.

Run as a subprocess (as root or as uid 65534): the hooks patch the
interpreter, and each run gets a fresh shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def snapshot(ip: Any) -> dict[str, Any]:
    import multiprocessing.forkserver
    import multiprocessing.util
    import subprocess

    import ipykernel.zmqshell as zmq
    import IPython.core.interactiveshell as ish

    mm = ip.magics_manager.magics
    return {
        "Popen._execute_child": subprocess.Popen.__dict__["_execute_child"],
        "os.system": os.system,
        "os._spawnvef": os.__dict__.get("_spawnvef"),
        "os.posix_spawn": os.posix_spawn,
        "os.posix_spawnp": os.posix_spawnp,
        "multiprocessing.util.spawnv_passfds": multiprocessing.util.spawnv_passfds,
        "forkserver.connect_to_new_process": multiprocessing.forkserver.connect_to_new_process,
        "interactiveshell.system": ish.system,
        "zmqshell.system": zmq.system,
        "shell.system": ip.system.__func__,  # (a bound method is a new object each time)
        "shell.getoutput": ip.getoutput.__func__,
        **{f"cell magic {n}": mm["cell"].get(n) for n in ("bash", "sh", "script")},
        **{f"line magic {n}": mm["line"].get(n) for n in ("system", "sx", "pip")},
    }


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out_path = Path(sys.argv[2])
    sys.path.insert(0, spec["repo"])
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import ipykernel.zmqshell  # noqa: F401  (its module-level system is hooked too)
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    ip = InteractiveShell.instance()
    # IPython 9 registers magics lazily: resolve them first, so that an
    # identity change below can only be the extension's doing.
    for n in ("bash", "sh", "script"):
        ip.find_cell_magic(n)
    for n in ("system", "sx", "pip"):
        ip.find_line_magic(n)
    # display full: the tests look at every event of a cell's audit (the
    # default display keeps the denied ones only); a spec may say otherwise.
    for name, value in {"display": "full", **spec.get("config", {})}.items():
        ip.config.AgentshMagics[name] = value
    before_ids = snapshot(ip)
    before_children = children()
    ip.run_line_magic("load_ext", "agentsh_ipy")
    ip.run_line_magic("load_ext", "agentsh_ipy")  # twice: harmless
    magics = ip.magics_manager.registry["AgentshMagics"]
    import agentsh_ipy

    result: dict[str, Any] = {"agentsh_ipy": agentsh_ipy.__file__}
    hooked = snapshot(ip)
    result["hooked"] = sorted(k for k in before_ids if hooked[k] is not before_ids[k])
    if spec.get("fake"):
        import _fake

        magics.start_client = _fake.FakeClient.start
        magics.find_enforcement = lambda: (True, "fake mechanism")
    if "enforcement" in spec:
        enforcing, why = spec["enforcement"]
        magics.find_enforcement = lambda: (enforcing, why)
    cells = []
    seen_children: set[int] = set()
    for i, code in enumerate(spec["cells"]):
        with capture_output() as cap:
            r = ip.run_cell(code, store_history=True, cell_id=f"cell-{i}")
        err = r.error_before_exec or r.error_in_exec
        cells.append(
            {"success": r.success, "error": None if err is None else f"{type(err).__name__}: {err}",
             "stdout": cap.stdout, "stderr": cap.stderr,
             "outputs": [o.data for o in cap.outputs]}
        )  # fmt: skip
        seen_children.update(children())
    result["cells"] = cells
    values = ip.user_ns.get(spec.get("values", "R"), {})
    result["values"] = json.loads(json.dumps(values, default=repr))
    if spec.get("fake"):
        import _fake

        result["calls"] = [c for client in _fake.FakeClient.started for c in client.calls]
    client = getattr(magics, "_client", None)
    result["daemon_pid"] = getattr(client, "pid", None)
    result["children_during"] = sorted(seen_children - set(before_children))
    if spec.get("unload", True):
        ip.run_line_magic("unload_ext", "agentsh_ipy")
        after = snapshot(ip)
        result["not_restored"] = sorted(k for k in before_ids if after[k] is not before_ids[k])
        result["registered_after_unload"] = "AgentshMagics" in ip.magics_manager.registry
        result["agentsh_magic_after_unload"] = [
            k for k in ("line", "cell") if "agentsh" in ip.magics_manager.magics[k]
        ]
        result["left_children"] = [p for p in children() if p not in before_children and alive(p)]
        if spec.get("fake"):
            result["fake_closed"] = [c.closed for c in _fake.FakeClient.started]
        result["alive_after_unload"] = [p for p in result["children_during"] if alive(p)]
    out_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
