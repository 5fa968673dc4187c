"""Threat: exhaust the machine's processes.  Every process forks DEPTH
times in a row (2**DEPTH processes when nothing stops it; bounded so that a
failing sandbox cannot take the host down), holds on for two seconds, and
reports over a pipe: "+" for every process that ran, "!" for every refused
fork.

Usage: fork_bomb.py [DEPTH]   Prints "alive: N" and "refused: M".
"""

import os
import select
import sys
import time

DONE = 42
depth = int(sys.argv[1]) if len(sys.argv) > 1 else 6
root = os.getpid()
r, w = os.pipe()
for _ in range(depth):
    try:
        os.fork()
    except OSError:
        os.write(w, b"!")
os.write(w, b"+")
if os.getpid() != root:
    os.close(r)
    time.sleep(2)
    os._exit(0)
os.close(w)
counts = {"+": 0, "!": 0}
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    ready, _, _ = select.select([r], [], [], 1)
    if not ready:
        continue
    chunk = os.read(r, 4096)
    if not chunk:  # every writer has exited
        break
    for c in chunk.decode():
        counts[c] += 1
print(f"alive: {counts['+']}")
print(f"refused: {counts['!']}")
sys.exit(DONE)
