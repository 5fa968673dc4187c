"""Threat: use what root's capabilities open (issue 17: CAP_NET_ADMIN,
CAP_SYS_ADMIN, CAP_LINUX_IMMUTABLE, CAP_SYS_RESOURCE, ... were all kept in
the sandbox). Reports this process's capability sets; the test compares
them with the set the sandbox keeps.

Usage: capabilities.py
Prints "CapInh: HEX", "CapPrm: HEX", "CapEff: HEX", "CapBnd: HEX", "CapAmb: HEX".
"""

import sys

DONE = 42

with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("Cap"):
            name, value = line.split()
            print(f"{name} {value}", flush=True)
sys.exit(DONE)
