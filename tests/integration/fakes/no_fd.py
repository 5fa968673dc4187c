"""Never sends the listener fd: the supervisor must give up at the handoff bound."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pidfile = os.environ.get("AGENTSH_TEST_PIDFILE")
if pidfile:
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
time.sleep(120)
