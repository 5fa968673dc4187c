"""Benchmarks of agentsh-ipy (issue 6): what the sandbox costs.

    python benchmarks/run.py [--quick] [--rounds N] [--only NAME[,NAME]] [--json PATH] [--check]

Each workload is a script written into a temporary directory and run
identically bare, sandboxed (``agentsh-ipy exec``, so the cold start is
included), sandboxed with the native fast path switched off
(``AGENTSH_IPY_FAST=0``: file rules decided in Python) and, where installed,
under bubblewrap (namespaces only, audits nothing): alternated within each
round, medians over the rounds. The
launch and kernel workloads compare a warm ``%%agentsh`` session and the
sandboxed kernel with plain IPython and plain ipykernel instead.

``--blocked`` runs it all (every column) under tests/integration/run_blocked.py,
which refuses pidfd_getfd and unshare(CLONE_FS) as Docker's default seccomp
profile does without CAP_SYS_PTRACE/CAP_SYS_ADMIN: notify mode with its
stand-ins (the umask applied explicitly, socket calls traced), for the
workloads that do not use the ``%%agentsh`` daemon, which refuses there
(BLOCKED_WORKLOADS).

Timings are reported, never asserted: the script exits 0 when every workload
ran (2 when one failed; a failed sandboxed run is an error, never a fast
number), and with ``--check`` 1 when a target was missed. Everything it
writes (workspace, HOME, Jupyter and IPython directories, audits) lives in
one temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
WORKLOADS = ("cold", "launch", "exec", "file", "build", "network", "kernel", "notify")
# The ones measured with --blocked (launch, file and notify also time the
# %%agentsh daemon, which refuses there), and the mark of the re-executed run.
BLOCKED_WORKLOADS = ("cold", "exec", "build", "network", "kernel")
BLOCKED_CALLS = "pidfd_getfd,unshare_fs"
FAST_ENV = "AGENTSH_IPY_FAST"  # "0": the file rules in Python (supervisor/_fast.py)
BLOCKED_MARK = "AGENTSH_BENCH_BLOCKED"
SKIP_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}

# (full, quick) sizes; the four ratio workloads are repeated until their bare
# run takes at least MIN_BARE_S (the sizing rule), see sized().
SIZES: dict[str, tuple[int, int]] = {
    "cold_reps": (4, 2),  # cold starts per round (each one is cheap)
    "launch": (300, 100),
    "exec": (500, 150),
    "files": (3000, 800),
    "modules": (150, 40),
    "git_files": (500, 100),
    "connects": (2000, 500),
    "rtt": (50, 15),
    "opens": (20000, 3000),
}
MIN_BARE_S = 0.5
TREE = (("email", "json", "asyncio", "logging"), ("json", "email"))

REPEAT_SH = 'k=$1; shift; i=0\nwhile [ "$i" -lt "$k" ]; do "$@" || exit; i=$((i+1)); done\n'
EXEC_SH = 'n=$1; i=0\nwhile [ "$i" -lt "$n" ]; do /bin/true; i=$((i+1)); done\n'
FILES_PY = """\
import importlib, sys
paths = open(sys.argv[1]).read().split("\\n")[: int(sys.argv[3])]
total = 0
for p in paths:
    with open(p, "rb") as f:
        total += len(f.read())
for name in open(sys.argv[2]).read().split():
    importlib.import_module(name)
print(len(paths), total)
"""
BUILD_SH = """\
set -e
py=$1 tree=$2 work=$3 nfiles=$4
"$py" -m compileall -q -f "$tree" >/dev/null
[ "$nfiles" -gt 0 ] || exit 0
repo=$work/gitrepo; rm -rf "$repo"; mkdir -p "$repo"; cd "$repo"
i=0; while [ "$i" -lt "$nfiles" ]; do echo "file $i" > "f$i.txt"; i=$((i+1)); done
git init -q . && git add . && git commit -q -m bench && git log --oneline >/dev/null
"""
# SO_LINGER 0: the close sends a reset, so thousands of connects per run
# leave no TIME_WAIT sockets behind to exhaust the ephemeral ports.
NET_PY = """\
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
linger = struct.pack("ii", 1, 0)
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.close()
"""
# The file-heavy inputs: small readable files under /usr (no dot-files: the
# policy denies `.env` files anywhere) in a fixed order spread over the tree,
# and the first stdlib modules (sorted) that import in a fresh interpreter.
LISTS_PY = """\
import importlib, os, random, sys
out, nfiles, nmods, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), set(sys.argv[4:])
found = []
for top in ("/usr/share", "/usr/lib"):
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if f[0] != "." and st.st_mode & 0o170000 == 0o100000 and st.st_size < 65536:
                if os.access(p, os.R_OK):
                    found.append(p)
random.Random(6).shuffle(found)
with open(out + "/files.txt", "w") as fh:
    fh.write("\\n".join(found[:nfiles]))
mods = []
for name in sorted(sys.stdlib_module_names):
    if name[0] != "_" and name not in skip:
        try:
            importlib.import_module(name)
        except Exception:
            continue
        mods.append(name)
with open(out + "/modules.txt", "w") as fh:
    fh.write("\\n".join(mods[:nmods]))
"""
OPENS_PY = """\
import os, sys, time
n = int(sys.argv[1])
t = time.perf_counter()
for _ in range(n):
    os.close(os.open(sys.argv[0], os.O_RDONLY))
print(time.perf_counter() - t)
"""
# Cell bodies shared by the magic driver and the kernels.
LOOP_CELL = (
    "import subprocess, time\n_bench_t0 = time.perf_counter()\n"
    "for _ in range({n}):\n    subprocess.run(['/bin/true'], check=True)\n"
    "_bench_dt = time.perf_counter() - _bench_t0\n"
)
# Seccomp_filters of a child: more than the benchmark's own means sandboxed.
PROBE_CELL = (
    "import subprocess\n_bench_filters = int(subprocess.run(['grep', 'Seccomp_filters',"
    " '/proc/self/status'], capture_output=True, text=True, check=True).stdout.split()[1])\n"
)
MAGIC_PY = """\
import json, sys
from IPython.core.interactiveshell import InteractiveShell
out, rounds, audit_dir, ws = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "agentsh_ipy")
shell.run_line_magic("config", f"AgentshMagics.audit_dir = {audit_dir!r}")
shell.run_line_magic("config", f"AgentshMagics.workspace = {ws!r}")
def cell(code, name):
    if not shell.run_cell(code).success:
        raise SystemExit(f"the {name} cell failed")
    return shell.user_ns.get(name)
res = {"bare": [], "sandboxed": []}
# The first sandboxed cell starts the daemon: the warm-up, not timed.
res["filters_sandboxed"] = cell("%%agentsh\\n" + PROBE, "_bench_filters")
res["filters_bare"] = cell(PROBE, "_bench_filters")
for _ in range(rounds):
    res["bare"].append(cell(LOOP, "_bench_dt"))
    res["sandboxed"].append(cell("%%agentsh\\n" + LOOP, "_bench_dt"))
shell.run_line_magic("unload_ext", "agentsh_ipy")  # stops the daemon, ends its audit
with open(out, "w") as f:
    json.dump(res, f)
"""


class BenchError(Exception):
    """A run that failed: reported loudly, never turned into a number."""


@dataclass
class Row:
    name: str
    size: str
    kind: str  # "ratio" (x), "added" (ms added) or "value"
    bare: float | None = None  # seconds, or ms per launch for launch rows
    sandboxed: float | None = None
    bwrap: float | None = None
    fast_off: float | None = None  # sandboxed with AGENTSH_IPY_FAST=0, as `sandboxed`
    result: float | None = None  # the ratio, the added ms or the value
    target: float | None = None
    unit: str = ""
    higher_is_better: bool = False
    note: str = ""
    error: str | None = None
    repeat: int = 1  # runs of the workload per command (sized rows: the xN)
    samples: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.result is None or self.target is None:
            return None
        return self.result >= self.target if self.higher_is_better else self.result <= self.target


@dataclass
class Ctx:
    """The temporary tree, the sizes and the ways to run a command."""

    root: Path
    quick: bool
    rounds: int
    bwrap: str | None
    git: str | None
    base_filters: int
    seq: int = 0
    policy: str | None = None  # --policy for sandboxed runs (None: the built-in one)

    def __post_init__(self) -> None:
        for d in ("ws", "scripts", "home", "tmp", "audit", "kernels", "ipython", "jupyter"):
            (self.root / d).mkdir()
        self.ws = self.root / "ws"

    def size(self, key: str) -> int:
        return SIZES[key][1 if self.quick else 0]

    def script(self, name: str, text: str) -> str:
        path = self.root / "scripts" / name
        path.write_text(text)
        return str(path)

    def modes(self) -> list[str]:
        return ["bare", "sandboxed", "fast-off"] + (["bwrap"] if self.bwrap else [])

    def wrap(self, mode: str, argv: list[str], share_net: bool) -> tuple[list[str], Path | None]:
        if mode == "bare":
            return argv, None
        if mode == "bwrap":
            assert self.bwrap is not None
            net = ["--share-net"] if share_net else []
            ns = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
            ns += ["--bind", str(self.root), str(self.root), "--unshare-all", *net]
            ns += ["--die-with-parent", "--chdir", str(self.ws)]
            return [self.bwrap, *ns, "--", *argv], None
        self.seq += 1
        audit = self.root / "audit" / f"exec-{self.seq}.jsonl"
        cli = [PY, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(self.ws)]
        if self.policy is not None:
            cli += ["--policy", self.policy]
        return [*cli, "--audit", str(audit), "--", *argv], audit

    def run(
        self, mode: str, argv: list[str], share_net: bool = False
    ) -> tuple[float, str, dict[str, Any]]:
        """(wall seconds, stdout, supervisor stats) of one run; raises on any failure."""
        full, audit = self.wrap(mode, argv, share_net)
        pipe, hwm = subprocess.PIPE, 0
        t0 = time.perf_counter()
        env = {**os.environ, FAST_ENV: "0"} if mode == "fast-off" else None
        with subprocess.Popen(
            full, cwd=self.ws, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe, env=env
        ) as p:
            while True:
                try:
                    out, err = p.communicate(timeout=None if audit is None else 0.05)
                    break
                except subprocess.TimeoutExpired:  # sample the supervisor's peak RSS
                    hwm = max(hwm, proc_status(str(p.pid), "VmHWM"))
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            tail = err.decode(errors="replace").strip()[-800:]
            raise BenchError(f"{mode} run of {argv[:3]} exited {p.returncode}: {tail}")
        if audit is not None:
            fast_path(audit, on=mode != "fast-off")
        stats = {**end_stats(audit), "sampled_hwm_kb": hwm} if audit is not None else {}
        if audit is not None and os.environ.get(BLOCKED_MARK) and "traced" not in stats:
            raise BenchError("--blocked: the session did not use the stand-ins")
        return dt, out.decode(errors="replace"), stats


def fast_path(audit: Path, on: bool) -> None:
    """The start event must say the fast path was as this column claims."""
    with open(audit, "rb") as f:
        said = str(json.loads(f.readline()).get("fast_path"))
    if (said == "on") != on:
        raise BenchError(f"the fast path should be {'on' if on else 'off'}, the audit says {said}")


def end_stats(audit: Path) -> dict[str, Any]:
    """The supervisor's stats from the audit's last line, which must say the
    sandbox ended cleanly after handling notifications (else it was no sandbox)."""
    try:  # the tail only: a file-heavy audit is megabytes
        with open(audit, "rb") as f:
            f.seek(max(0, os.path.getsize(audit) - 16384))
            end = json.loads(f.read().splitlines()[-1])
    except (OSError, IndexError, ValueError) as e:
        raise BenchError(f"no audit end event in {audit}: {e}") from e
    audit.unlink()  # file-heavy audits are megabytes; only the stats matter
    stats = end.get("stats") or {}
    if end.get("op") != "end" or end.get("exit_code") != 0 or not stats.get("notifications"):
        raise BenchError(f"sandboxed run did not end cleanly under supervision: {end}")
    return dict(stats)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def alternate(
    ctx: Ctx, argv: list[str], rounds: int, share_net: bool = False
) -> dict[str, list[Any]]:
    """Times per mode (bare, sandboxed, bwrap, bare, ...) and the sandboxed stats."""
    out: dict[str, list[Any]] = {m: [] for m in [*ctx.modes(), "stats"]}
    for _ in range(rounds):
        for mode in ctx.modes():
            dt, _, stats = ctx.run(mode, argv, share_net)
            out[mode].append(dt)
            if stats:
                out["stats"].append(stats)
    return out


def sized(
    ctx: Ctx, name: str, size: str, argv: list[str], target: float, share_net: bool = False
) -> Row:
    """A ratio row for the issue-sized workload `argv`, repeated k times in
    one command so that the bare run takes at least MIN_BARE_S (k = 1 in the
    quick run). Repeating keeps the workload's mix (interpreter start-up,
    imports, files, processes) where growing one count would not."""
    rep, k = ctx.script("repeat.sh", REPEAT_SH), 1
    if not ctx.quick:
        ctx.run("bare", argv, share_net)  # warm the page cache and first-run effects
        t = med([ctx.run("bare", argv, share_net)[0] for _ in range(2)])
        k = max(1, math.ceil(MIN_BARE_S * 1.2 / t))  # 20 % margin for noise
    s = alternate(ctx, ["sh", rep, str(k), *argv], ctx.rounds, share_net)
    row = ratio_row(ctx, name, f"{size} x{k}", s, target)
    row.repeat = k
    return row


def ratio_row(ctx: Ctx, name: str, size: str, s: dict[str, list[Any]], target: float | None) -> Row:
    bare, sbx = med(s["bare"]), med(s["sandboxed"])
    row = Row(name, size, "ratio", bare, sbx, result=sbx / bare, target=target)
    if s.get("fast-off"):
        row.fast_off = med(s["fast-off"])
    if s.get("bwrap"):
        row.bwrap = med(s["bwrap"])
    if bare < MIN_BARE_S and not ctx.quick:  # the sizing rule failed: say so
        row.note = f"bare {bare:.2f} s < {MIN_BARE_S} s"
    row.samples = s
    return row


# ---------------------------------------------------------------- workloads


def w_cold(ctx: Ctx) -> list[Row]:
    ctx.run("sandboxed", ["/bin/true"])  # warm-up: page cache, .pyc files
    s = alternate(ctx, ["/bin/true"], ctx.rounds * ctx.size("cold_reps"))
    bare, sbx = med(s["bare"]), med(s["sandboxed"])
    row = Row("cold start", "/bin/true", "added", bare, sbx, result=(sbx - bare) * 1e3, target=50)
    row.bwrap = med(s["bwrap"]) if s.get("bwrap") else None
    row.fast_off = med(s["fast-off"]) if s.get("fast-off") else None
    row.unit, row.samples = "ms", s
    return [row]


def w_exec(ctx: Ctx) -> list[Row]:
    n, sh = ctx.size("exec"), ctx.script("exec.sh", EXEC_SH)
    return [sized(ctx, "exec-heavy", f"{n} processes", ["sh", sh, str(n)], 1.5)]


def w_file(ctx: Ctx) -> list[Row]:
    script, lists = ctx.script("files.py", FILES_PY), ctx.script("lists.py", LISTS_PY)
    # In a child: importing 150 stdlib modules here would change this process.
    n, m = str(ctx.size("files")), str(ctx.size("modules"))
    subprocess.run([PY, lists, str(ctx.root / "scripts"), n, m, *SKIP_MODULES], check=True)
    flist, mods = ctx.root / "scripts" / "files.txt", ctx.root / "scripts" / "modules.txt"
    nfiles, nmods = len(flist.read_text().split("\n")), len(mods.read_text().split())
    argv = [PY, script, str(flist), str(mods), str(nfiles)]
    row = sized(ctx, "file-heavy", f"{nfiles} files, {nmods} imports", argv, 1.3)
    stats = row.samples["stats"]
    rss = max(st["peak_rss_kb"] for st in stats) / 1024
    mem = Row("supervisor peak RSS", "file-heavy, max", "value", result=rss, target=80, unit="MiB")
    mem.sandboxed = rss
    # The stats' peak is the supervisor's VmHWM at its end; the sampled one
    # (read here while it runs) is a cross-check.
    hwm = max(st["sampled_hwm_kb"] for st in stats)
    mem.note = f"the supervisor's VmHWM; sampled while it ran: {hwm / 1024:.1f} MiB"
    return [row, mem, magic_file_row(ctx, argv, row)]


def magic_file_row(ctx: Ctx, argv: list[str], row: Row) -> Row:
    """The same work started from a %%agentsh cell (the magic's daemon
    decides it and sends every event to the notebook): no target of its
    own, it shows what a notebook user of the magic gets."""
    k = row.repeat
    loop = (
        "import subprocess, time\n_bench_t0 = time.perf_counter()\n"
        f"for _ in range({k}):\n"
        f"    subprocess.run({argv!r}, check=True, stdout=subprocess.DEVNULL)\n"
        "_bench_dt = time.perf_counter() - _bench_t0\n"
    )
    res, audits = run_magic(ctx, "file", loop)
    reads = sum(a.read_text().count('"type":"file"') for a in audits)
    expected = int(argv[-1]) * k * ctx.rounds
    if reads < expected:
        raise BenchError(f"the magic's audit has {reads} file events, expected >= {expected}")
    s = {"bare": res["bare"], "sandboxed": res["sandboxed"]}
    out = ratio_row(ctx, "file-heavy (%%agentsh)", row.size, s, target=None)
    out.repeat = k
    out.note = "from a notebook cell, through the magic's daemon; no target"
    return out


def w_build(ctx: Ctx) -> list[Row]:
    tree = ctx.ws / "tree"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for pkg in TREE[ctx.quick]:
        shutil.copytree(stdlib / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    nfiles = ctx.size("git_files") if ctx.git else 0
    argv = ["sh", ctx.script("build.sh", BUILD_SH), PY, str(tree), str(ctx.ws), str(nfiles)]
    npy = sum(1 for _ in tree.rglob("*.py"))
    size = f"compileall {npy} files" + (f", git {nfiles} files" if nfiles else ", no git")
    # git init writes .git/hooks and .git/config, protected by default: the
    # built-in policy, opening `git` on purpose as a user building a repo would.
    builtin = (REPO / "agentsh_ipy" / "policy" / "default.yaml").read_text()
    opened = "unprotect:\n  - {name: git, reason: the build workload makes a git repository}\n"
    ctx.policy = ctx.script("build-policy.yaml", builtin + opened)
    try:
        return [sized(ctx, "build-like", size, argv, 1.3)]
    finally:
        ctx.policy = None


@contextlib.contextmanager
def listener() -> Iterator[int]:
    """A loopback TCP listener (outside any sandbox) that accepts and closes."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listener closed: the benchmark is done
            while True:
                srv.accept()[0].close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        srv.close()


def w_network(ctx: Ctx) -> list[Row]:
    n, script = ctx.size("connects"), ctx.script("net.py", NET_PY)
    with listener() as port:
        # The listener is a service of this host: the built-in policy plus a
        # rule that names it, as a user reaching a local service would write.
        named = f"  - {{name: bench, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n"
        builtin = (REPO / "agentsh_ipy" / "policy" / "default.yaml").read_text()
        ctx.policy = ctx.script("net-policy.yaml", builtin.replace(
            "network_rules:\n", "network_rules:\n" + named, 1))  # fmt: skip
        # bwrap shares the host's network here: the listener is on its loopback.
        argv = [PY, script, str(port), str(n)]
        try:
            row = sized(ctx, "network", f"{n} loopback connects", argv, 1.5, share_net=True)
        finally:
            ctx.policy = None
    if ctx.bwrap:
        row.note = (row.note + "; " if row.note else "") + "bwrap with --share-net"
    return [row]


@contextlib.contextmanager
def pinned() -> Iterator[int]:
    """Pin this thread (and so the children it starts) to one CPU."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def rate_row(name: str, size: str, bare: list[float], sandboxed: list[float], note: str) -> Row:
    """A wall-clock rate (per second) bare and sandboxed; no target."""
    row = Row(name, size, "value", med(bare), med(sandboxed), result=med(sandboxed), unit="/s")
    row.note, row.samples = note, {"bare": bare, "sandboxed": sandboxed}
    return row


def w_notify(ctx: Ctx) -> list[Row]:
    script = ctx.script("opens.py", OPENS_PY)
    n = ctx.size("opens")
    argv = [PY, script, str(n)]
    bare, wall, cpu_rate, stats, cpu_off = [], [], [], [], []
    with pinned() as cpu:
        for _ in range(ctx.rounds):
            bare.append(n / float(ctx.run("bare", argv)[1]))
            _, out, st = ctx.run("sandboxed", argv)
            wall.append(n / float(out))
            cpu_rate.append(st["notifications"] / st["notify_cpu_s"])
            stats.append(st)
            st = ctx.run("fast-off", argv)[2]
            cpu_off.append(st["notifications"] / st["notify_cpu_s"])
        # The same loop from a %%agentsh cell (the magic's daemon decides it
        # and sends each event to the notebook), on the same CPU.
        loop = (
            "import subprocess\n"
            f"_bench_out = subprocess.run({argv!r}, check=True,"
            " capture_output=True, text=True).stdout\n_bench_dt = float(_bench_out)\n"
        )
        res, _ = run_magic(ctx, "opens", loop)
    # Unpinned, the supervisor and the program may each wake on another CPU
    # at every hand-off; on a VM such a wake-up can cost more than the work.
    free_bare, free_wall = [], []
    for _ in range(ctx.rounds):
        free_bare.append(n / float(ctx.run("bare", argv)[1]))
        free_wall.append(n / float(ctx.run("sandboxed", argv)[1]))
    size = f"{n} opens, CPU {cpu}"
    r1 = Row("notifications/s (notify CPU)", size, "value", result=med(cpu_rate), target=40000)
    r1.higher_is_better, r1.unit, r1.sandboxed = True, "/s", med(cpu_rate)
    r1.fast_off = med(cpu_off)
    r1.samples = {"rate": cpu_rate, "stats": stats, "fast_off_rate": cpu_off}
    r2 = rate_row("notifications/s (wall, 1 CPU)", size, bare, wall,
                  "bare column: opens/s unsandboxed")  # fmt: skip
    magic = {mode: [n / dt for dt in res[mode]] for mode in ("bare", "sandboxed")}
    r3 = rate_row(
        "notifications/s (%%agentsh, wall, 1 CPU)", size, magic["bare"], magic["sandboxed"],
        "from a notebook cell, through the magic's daemon; bare column: the same cell unsandboxed",
    )  # fmt: skip
    cpus = len(os.sched_getaffinity(0))
    r4 = rate_row(
        f"notifications/s (wall, {cpus} CPUs)", f"{n} opens", free_bare, free_wall,
        "the same loop not pinned: each hand-off may wake the other side on another CPU",
    )  # fmt: skip
    return [r1, r2, r4, r3]


def count_execs(files: list[Path], path: str = "/bin/true") -> int:
    """Exec events of `path` in JSON Lines audits: what the supervisor saw run."""
    n = 0
    for f in files:
        with open(f) as lines:
            for line in lines:
                ev = json.loads(line) if '"exec"' in line else {}
                n += ev.get("type") == "exec" and ev.get("path") == path
    return n


def run_magic(ctx: Ctx, tag: str, loop: str) -> tuple[dict[str, Any], list[Path]]:
    """Run the cell ``loop`` bare and under %%agentsh, alternated, in one
    IPython session: (its ``_bench_dt`` per round and mode, the audit files)."""
    adir = ctx.root / "audit" / f"magic-{tag}"
    adir.mkdir()
    text = f"PROBE = {PROBE_CELL!r}\nLOOP = {loop!r}\n{MAGIC_PY}"
    driver, out = ctx.script(f"magic-{tag}.py", text), ctx.root / f"magic-{tag}.json"
    argv = [PY, driver, str(out), str(ctx.rounds), str(adir), str(ctx.ws)]
    p = subprocess.run(argv, cwd=ctx.ws, stdin=subprocess.DEVNULL, capture_output=True)
    if p.returncode != 0:
        raise BenchError(f"magic driver exited {p.returncode}: {p.stderr.decode()[-800:]}")
    res = json.loads(out.read_text())
    if not res["filters_sandboxed"] > ctx.base_filters or res["filters_bare"] != ctx.base_filters:
        raise BenchError(f"%%agentsh cells did not run sandboxed: {res}")
    return res, list(adir.glob("*.jsonl"))


def w_launch(ctx: Ctx) -> list[Row]:
    n = ctx.size("launch")
    res, audits = run_magic(ctx, "launch", LOOP_CELL.format(n=n))
    execs = count_execs(audits)
    if execs != n * ctx.rounds:
        raise BenchError(f"the audit has {execs} /bin/true execs, expected {n * ctx.rounds}")
    return [launch_row("launch (%%agentsh)", n, res["bare"], res["sandboxed"])]


def launch_row(name: str, n: int, bare: list[float], sbx: list[float]) -> Row:
    b, s = med(bare) / n * 1e3, med(sbx) / n * 1e3
    row = Row(name, f"{n} x subprocess.run", "added", b / 1e3, s / 1e3, result=s - b, target=2)
    row.unit, row.samples = "ms/launch", {"bare": bare, "sandboxed": sbx}
    return row


def kernelspecs(ctx: Ctx) -> tuple[Any, Path]:
    from jupyter_client.kernelspec import KernelSpecManager

    audit = ctx.root / "audit" / "kernel.jsonl"
    # History in memory for both: the sandboxed kernel's inner ipykernel uses
    # it (its home is not writable), so the plain one must not pay for sqlite.
    plain = [PY, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    plain.append("--HistoryManager.hist_file=:memory:")
    boxed = [PY, "-m", "agentsh_ipy.kernel", "-f", "{connection_file}"]
    boxed += ["--workspace", str(ctx.ws), "--audit", str(audit)]
    for name, argv in (("plain", plain), ("sandboxed", boxed)):
        d = ctx.root / "kernels" / f"bench-{name}"
        d.mkdir()
        spec = {"argv": argv, "display_name": name, "language": "python"}
        (d / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(ctx.root / "kernels")]), audit


def execute(kc: Any, code: str, expr: str | None = None) -> Any:
    """Run a cell to its idle status; the value of `expr` when given."""
    exprs = {"v": expr} if expr else {}
    reply = kc.execute_interactive(
        code, user_expressions=exprs, timeout=300, output_hook=lambda _msg: None, allow_stdin=False
    )
    c = reply["content"]
    if c["status"] != "ok":
        raise BenchError(f"cell {code[:40]!r} failed: {c.get('ename')}: {c.get('evalue')}")
    if expr:
        v = c["user_expressions"]["v"]
        if v.get("status") != "ok":
            raise BenchError(f"expression {expr!r} failed: {v}")
        return v["data"]["text/plain"]
    return None


def kernel_session(ctx: Ctx, ksm: Any, kind: str) -> dict[str, Any]:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=f"bench-{kind}", kernel_spec_manager=ksm)
    n_rtt, n_launch = ctx.size("rtt"), ctx.size("launch")
    with open(ctx.root / f"kernel-{kind}.log", "ab") as log:
        t0 = time.perf_counter()
        km.start_kernel(cwd=str(ctx.ws), stdout=log, stderr=log)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            execute(kc, "pass")  # start-up ends when a first cell has run
            startup = time.perf_counter() - t0
            for _ in range(3):
                execute(kc, "pass")
            rtt = []
            for _ in range(n_rtt):
                t = time.perf_counter()
                execute(kc, "pass")
                rtt.append(time.perf_counter() - t)
            filters = int(execute(kc, PROBE_CELL, "_bench_filters"))
            launch = float(execute(kc, LOOP_CELL.format(n=n_launch), "_bench_dt"))
        except RuntimeError as e:  # wait_for_ready: the kernel died or never answered
            tail = (ctx.root / f"kernel-{kind}.log").read_text(errors="replace")[-800:]
            raise BenchError(f"{kind} kernel: {e}: {tail}") from e
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
    sandboxed = filters > ctx.base_filters
    if sandboxed != (kind == "sandboxed"):
        raise BenchError(f"{kind} kernel: a child has {filters} seccomp filters")
    return {"startup": startup, "rtt": rtt, "launch": launch}


def w_kernel(ctx: Ctx) -> list[Row]:
    ksm, audit = kernelspecs(ctx)
    # Warm the page cache for both kernels, so the first start-up is not an outlier.
    ctx.run("bare", [PY, "-c", "import ipykernel.kernelapp, agentsh_ipy.kernel._app"])
    rounds = 1 if ctx.quick else ctx.rounds
    res: dict[str, list[dict[str, Any]]] = {"plain": [], "sandboxed": []}
    for _ in range(rounds):
        for kind in res:
            res[kind].append(kernel_session(ctx, ksm, kind))
    execs = count_execs([audit]) if audit.exists() else 0
    if execs < rounds * ctx.size("launch"):
        raise BenchError(f"the sandboxed kernel's audit has {execs} /bin/true execs")

    def pick(kind: str, key: str) -> list[float]:
        return [r[key] for r in res[kind]]

    p, s = med(pick("plain", "startup")), med(pick("sandboxed", "startup"))
    start = Row("kernel start-up", "start to first cell", "ratio", p, s, result=s / p, target=1.5)
    start.samples = {"bare": pick("plain", "startup"), "sandboxed": pick("sandboxed", "startup")}
    rp = [x for r in res["plain"] for x in r["rtt"]]
    rs = [x for r in res["sandboxed"] for x in r["rtt"]]
    rtt = Row("kernel round trip", f"{ctx.size('rtt')} x `pass`", "added", med(rp), med(rs))
    rtt.result, rtt.target, rtt.unit = (med(rs) - med(rp)) * 1e3, 2, "ms"
    rtt.samples = {"bare": rp, "sandboxed": rs}
    n = ctx.size("launch")
    launch = launch_row("launch (kernel)", n, pick("plain", "launch"), pick("sandboxed", "launch"))
    for row in (start, rtt, launch):
        row.note = "bare column: plain ipykernel"
    return [start, rtt, launch]


# "cold" -> w_cold, ...: one function per workload, each returning its rows.
RUNNERS: dict[str, Callable[[Ctx], list[Row]]] = {w: globals()[f"w_{w}"] for w in WORKLOADS}

# ---------------------------------------------------------------- report


def facts() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    try:
        version = importlib.metadata.version("agentsh-ipy")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "agentsh_ipy": version,
        "uid": os.geteuid(),
        "bwrap": shutil.which("bwrap"),
        "git": shutil.which("git"),
    }


def fmt_t(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.1f} ms" if s >= 0.01 else f"{s * 1e3:.2f} ms"


def fmt_v(v: float, unit: str) -> str:
    return f"{v:,.0f}{unit}" if unit == "/s" else f"{v:.1f} {unit}"


def cells(r: Row) -> list[str]:
    """workload, bare, sandboxed, result, fast path off, bwrap, target, met."""
    row = _cells(r)
    if r.error or r.fast_off is None:
        off = "-"
    elif r.kind == "ratio" and r.bare:
        off = f"{fmt_t(r.fast_off)} {r.fast_off / r.bare:.2f}x"
    elif r.kind == "added" and r.bare is not None:
        off = f"+{(r.fast_off - r.bare) * 1e3:.2f} {r.unit}"
    else:
        off = fmt_v(r.fast_off, r.unit)
    return [*row[:4], off, *row[4:]]


def _cells(r: Row) -> list[str]:
    """workload, bare, sandboxed, result, bwrap, target, met."""
    name = f"{r.name} ({r.size})"
    if r.error:
        return [name, "-", "-", "ERROR", "-", "-", "ERROR"]
    met = {True: "met", False: "NOT met", None: "-"}[r.met]
    if r.kind == "ratio":
        bw = "-" if r.bwrap is None or not r.bare else f"{fmt_t(r.bwrap)} {r.bwrap / r.bare:.2f}x"
        res, tgt = f"{r.result:.2f}x", "-" if r.target is None else f"<= {r.target}x"
    elif r.kind == "added":
        per = r.unit == "ms/launch"
        bw = "-" if r.bwrap is None or r.bare is None else f"+{(r.bwrap - r.bare) * 1e3:.1f} ms"
        res, tgt = f"+{r.result:.2f} {r.unit}", f"<= {r.target} {r.unit}"
        if per:  # bare and sandboxed are per launch
            return [name, fmt_t(r.bare), fmt_t(r.sandboxed), res, bw, tgt, met]
    else:
        bare = "-" if r.bare is None else fmt_v(r.bare, r.unit)
        sign = ">=" if r.higher_is_better else "<="
        tgt = "-" if r.target is None else f"{sign} {fmt_v(r.target, r.unit)}"
        sbx = "-" if r.sandboxed is None else fmt_v(r.sandboxed, r.unit)
        return [name, bare, sbx, fmt_v(r.result or 0, r.unit), "-", tgt, met]
    return [name, fmt_t(r.bare), fmt_t(r.sandboxed), res, bw, tgt, met]


def table(rows: list[Row]) -> str:
    head = ["workload", "bare", "sandboxed", "ratio/added", "fast path off", "bwrap", "target"]
    head.append("met")
    body = [head] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in body]
    lines.insert(1, "-" * len(lines[0]))
    notes = [f"  {r.name}: {r.note or r.error}" for r in rows if r.note or r.error]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes (CI)")
    p.add_argument("--rounds", type=int, help="rounds per workload (default 5, quick 2)")
    p.add_argument("--only", help="comma-separated subset of: " + ",".join(WORKLOADS))
    p.add_argument("--json", type=Path, help="also write the results here as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--blocked", action="store_true",
        help=f"run everything with {BLOCKED_CALLS} refused (notify mode's stand-ins); "
        f"workloads: {','.join(BLOCKED_WORKLOADS)}",
    )  # fmt: skip
    args = p.parse_args(argv)
    allowed = BLOCKED_WORKLOADS if args.blocked else WORKLOADS
    only = set(args.only.split(",")) if args.only else set(allowed)
    unknown = only - set(allowed)
    # Always in the order of WORKLOADS, whatever order --only names them in.
    args.only = [w for w in WORKLOADS if w in only]
    if unknown:
        p.error(f"unknown workload(s) {sorted(unknown)}; choose from {','.join(allowed)}")
    if args.rounds is not None and args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def proc_status(pid: str, key: str) -> int:
    """A number from /proc/PID/status (Seccomp_filters, VmHWM in KiB); 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(ln.split()[1] for ln in f if ln.startswith(key + ":")))
    except (OSError, StopIteration):
        return 0


def isolate_env(root: Path) -> None:
    """Point every home, state, Jupyter and IPython directory into `root`,
    for this process and every child (bare and sandboxed see the same env)."""
    os.environ.update(
        HOME=str(root / "home"),
        TMPDIR=str(root / "tmp"),
        XDG_STATE_HOME=str(root / "home" / ".local" / "state"),
        XDG_RUNTIME_DIR=str(root / "tmp"),
        IPYTHONDIR=str(root / "ipython"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter" / "runtime"),
        JUPYTER_DATA_DIR=str(root / "jupyter" / "data"),
        JUPYTER_CONFIG_DIR=str(root / "jupyter" / "config"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        # The checkout first, as the tests do, so it is the code measured.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="init.defaultBranch",
        GIT_CONFIG_VALUE_0="main",
    )
    tempfile.tempdir = None  # re-read TMPDIR


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    if args.blocked and not os.environ.get(BLOCKED_MARK):
        # Everything, bare runs too, in the "container": the launcher's
        # filter is inherited by every process this one starts.
        launcher = str(REPO / "tests" / "integration" / "run_blocked.py")
        os.environ[BLOCKED_MARK] = "1"
        os.execv(PY, [PY, launcher, BLOCKED_CALLS, "--", PY, __file__, *sys.argv[1:]])
    info = facts()
    if args.blocked:
        info["blocked"] = BLOCKED_CALLS
    print("agentsh-ipy benchmarks:", ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    if args.quick:
        print("QUICK RUN: fewer rounds and smaller workloads; not the reference numbers.")
    t_start = time.perf_counter()
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="agentsh-bench-"))
    try:
        filters = proc_status("self", "Seccomp_filters")
        ctx = Ctx(root, args.quick, rounds, info["bwrap"], info["git"], filters)
        isolate_env(root)
        for name in args.only:
            t = time.perf_counter()
            print(f"[{time.perf_counter() - t_start:6.1f} s] {name} ...", flush=True)
            try:
                new = RUNNERS[name](ctx)
            except Exception as e:
                detail = str(e) if isinstance(e, BenchError) else traceback.format_exc()
                print(f"ERROR in workload {name}: {detail}", file=sys.stderr, flush=True)
                new = [Row(name, "failed", "ratio", error=str(e) or type(e).__name__)]
            for r in new:
                r.samples["workload_s"] = round(time.perf_counter() - t, 2)
            rows += new
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - t_start
    print()
    print(table(rows))
    print(f"\ntotal {total:.0f} s, rounds={rounds}")
    if args.quick:
        print("QUICK RUN: the numbers above are not the reference; run without --quick.")
    if args.json:
        data = {"facts": info, "quick": args.quick, "rounds": rounds, "total_s": round(total, 1)}
        data["rows"] = [{**asdict(r), "met": r.met} for r in rows]
        args.json.write_text(json.dumps(data, indent=1) + "\n")
        print(f"results written to {args.json}")
    if any(r.error for r in rows):
        return 2
    return 1 if args.check and any(r.met is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
