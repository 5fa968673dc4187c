"""The cold start, layer by layer: what a supervisor started per command
pays before and besides its own work.

    python benchmarks/profile_cold.py [--runs N]

Runs `agentsh-ipy exec -- /bin/true` once to learn which modules it
imports, then times fresh interpreters (medians of N): doing nothing;
importing the standard-library modules among those; adding the
third-party ones (PyYAML); adding this package's; and the whole
`agentsh-ipy exec -- /bin/true`. Each line includes the ones above.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO}

LIST_MODULES = """\
import json, sys
from agentsh_ipy import cli
status = cli.main(["exec", "--audit", sys.argv[1], "--", "/bin/true"])
# (modules without a spec, such as Cython's cython_runtime, cannot be imported by name)
names = sorted(n for n, m in sys.modules.items() if getattr(m, "__spec__", None) is not None)
print(json.dumps({"status": status, "modules": names}))
"""


def run(argv: list[str]) -> str:
    p = subprocess.run(argv, env=ENV, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"{argv[:3]}... failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return p.stdout


def timed(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(argv)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        audit = os.path.join(scratch, "audit.jsonl")
        listed = json.loads(run([PY, "-c", LIST_MODULES, audit]).splitlines()[-1])
        if listed["status"] != 0:
            raise SystemExit(f"agentsh-ipy exec -- /bin/true exited {listed['status']}")
        used = listed["modules"]
        bare = set(run([PY, "-c", "import sys; print(' '.join(sys.modules))"]).split())
        new = [m for m in used if m not in bare and m != "__main__"]
        top = {m: m.split(".")[0] for m in new}
        stdlib = [m for m in new if top[m] in sys.stdlib_module_names]
        ours = [m for m in new if top[m] == "agentsh_ipy"]
        third = [m for m in new if m not in stdlib and m not in ours]
        layers = [
            ("the interpreter alone", [PY, "-c", "pass"]),
            (
                f"+ {len(stdlib)} standard-library modules",
                [PY, "-c", "import " + ", ".join(stdlib)],
            ),
            (
                f"+ {len(third)} third-party ({', '.join(sorted({top[m] for m in third}))})",
                [PY, "-c", "import " + ", ".join(stdlib + third)],
            ),
            (
                f"+ {len(ours)} of this package",
                [PY, "-c", "import " + ", ".join(stdlib + third + ours)],
            ),
            (
                "agentsh-ipy exec -- /bin/true",
                [PY, "-m", "agentsh_ipy.cli", "exec", "--audit", audit, "--", "/bin/true"],
            ),
        ]
        width = max(len(name) for name, _ in layers)
        for name, argv in layers:
            print(f"{name:{width}}  {1000 * timed(argv, args.runs):6.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
