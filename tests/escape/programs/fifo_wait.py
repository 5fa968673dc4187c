"""Not an escape: what a FIFO open that waits for its other end must still
do in a sandbox that opens it on the caller's behalf.

1. A child's read-only open waits until a writer comes, then reads what it
   wrote ("read: hello").
2. A child waiting in the same open is killed: its open must not linger as
   a reader somewhere, so a non-blocking write open soon fails with ENXIO
   again ("released: yes").

Usage: fifo_wait.py FIFO
"""

import errno
import os
import signal
import sys
import time

DONE = 42
OPENS = {"2", "257"}  # open, openat (x86_64; aarch64 has openat as 56)
if os.uname().machine == "aarch64":
    OPENS = {"56"}

fifo = sys.argv[1]
os.mkfifo(fifo)


def waiting_reader(then_read):
    pid = os.fork()
    if pid == 0:
        fd = os.open(fifo, os.O_RDONLY)
        if then_read:
            print("read:", os.read(fd, 100).decode(), flush=True)
        os._exit(0)
    for _ in range(1000):  # until it waits in the open
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split(" ", 1)[0] in OPENS:
                return pid
        time.sleep(0.01)
    sys.exit("the reader never waited in open")


pid = waiting_reader(True)
with open(fifo, "w") as w:
    w.write("hello")
os.waitpid(pid, 0)

pid = waiting_reader(False)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
released = "no"
for _ in range(100):
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as e:
        if e.errno == errno.ENXIO:
            released = "yes"
            break
        raise
    time.sleep(0.1)
print("released:", released, flush=True)
sys.exit(DONE)
