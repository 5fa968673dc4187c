"""Execute a notebook headless with nbclient and save it with its outputs.

Run as the test's user (root, or uid 65534 through setpriv) by the tests in
tests/kernel/, from a copy in the scratch area::

    python run_notebook.py IN.ipynb OUT.ipynb WORKDIR

nbclient sends every cell with allow_stdin False, as papermill and
``jupyter nbconvert --execute`` do: nothing can be asked of a person. Errors
in cells are kept in the saved outputs (allow_errors) for the test to read;
this prints a JSON line with how the run ended.
"""

from __future__ import annotations

import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def main() -> None:
    src, dst, workdir = sys.argv[1:4]
    # The kernel inherits fds 0-2; keep this script's report on its own fd.
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": workdir}},
    )
    start = time.monotonic()
    error = None
    try:
        client.execute()
    except Exception as e:  # reported, and the test fails on it
        error = f"{type(e).__name__}: {e}"
    nbformat.write(nb, dst)
    report.write(json.dumps({"error": error, "seconds": time.monotonic() - start}) + "\n")
    report.flush()


main()
