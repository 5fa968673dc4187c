"""Caches and datasets go to the sandbox's own cache home (issue 18), as
root and as uid 65534: matplotlib's font cache and a scikit-learn dataset
folder are written by cells of the sandboxed kernel without a permission
error, under ``~/.cache/agentsh-ipy/sandbox``, and nothing else of the
user's ``~/.cache`` (nor ``~/scikit_learn_data``) is created or changed: a
cache the user's own programs read is no place for the sandbox to write.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agentsh_ipy.audit import is_denial

from ._harness import SandboxedKernel

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

CELL = """
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1, 2, 3])
plt.savefig("plot.png")
from sklearn.datasets import get_data_home
home = get_data_home()
with open(os.path.join(home, "dataset.csv"), "w") as f:  # as a fetch_* would
    f.write("a,b\\n1,2\\n")
print("mpl", matplotlib.get_cachedir())
print("sklearn", home)
"""


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            if Path(path) != skip:
                st = os.lstat(path)
                out[path] = (st.st_size, st.st_mtime_ns)
    return out


def test_caches_go_to_the_sandbox_cache_home(kernel: SandboxedKernel) -> None:
    home = Path(kernel.area.home)
    user_cache = home / ".cache"
    own = user_cache / "agentsh-ipy" / "sandbox"
    # the user's own caches, as a user's programs left them
    (user_cache / "pip").mkdir(parents=True, exist_ok=True)
    (user_cache / "pip" / "selfcheck.json").write_text("{}")
    before = snapshot(user_cache, own)
    cell = kernel.ok(CELL)
    out = cell.stdout
    assert f"mpl {own / 'matplotlib'}\n" in out, out
    assert f"sklearn {own / 'scikit_learn_data'}\n" in out, out
    assert (own / "scikit_learn_data" / "dataset.csv").read_text() == "a,b\n1,2\n"
    assert any(p.name.startswith("fontlist") for p in (own / "matplotlib").iterdir())
    assert (kernel.area.ws / "plot.png").stat().st_size > 0
    denied = [e for e in cell.events() if is_denial(e)]
    assert denied == [], denied
    written = {e["path"] for e in cell.events_of("file") if e.get("rule") == "sandbox-cache"}
    assert any(p.startswith(str(own)) for p in written), written
    # nothing of the user's own changed, nothing new beside the sandbox's home
    assert snapshot(user_cache, own) == before
    assert not (home / "scikit_learn_data").exists()
