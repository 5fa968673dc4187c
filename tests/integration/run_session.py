"""Run one Session with a chosen wrapper and bounds; print the result as JSON.

Used by the handshake tests to inject faults through the Python API
(the CLI has no way to swap the wrapper, on purpose).
"""

import json
import os
import signal
import sys
import time

from agentsh_ipy import audit as aud
from agentsh_ipy import supervisor as sup


def main() -> None:
    wrapper, handoff, ready, go, workspace, *cmd = sys.argv[1:]
    if os.environ.get("AGENTSH_TEST_SIGUSR1"):
        # A handler (not SIG_IGN), so each SIGUSR1 interrupts a blocking read.
        signal.signal(signal.SIGUSR1, lambda *_: None)
        print("ready-for-signals", flush=True)
    policy = sup.load_policy(os.environ.get("AGENTSH_TEST_POLICY"), workspace)
    log = aud.AuditLog(None, "test", time.time)
    events: list[dict[str, object]] = []
    log.subscribe(events.append)
    if os.environ.get("AGENTSH_TEST_SLOW_AUDIT"):
        # Exec requests recorded well after their answer (a loaded machine).
        from agentsh_ipy.supervisor._treeaudit import TreeAudit

        record = TreeAudit._on_request

        def late(self, req):  # type: ignore[no-untyped-def]
            if req.kind == "exec":
                time.sleep(0.3)
            record(self, req)

        TreeAudit._on_request = late  # type: ignore[method-assign]
    start = time.monotonic()
    result = sup.run(
        policy,
        log,
        cmd,
        mode=os.environ.get("AGENTSH_TEST_MODE", "notify"),
        timeouts=sup.Timeouts(float(handoff), float(ready), float(go)),
        wrapper_cmd=[sys.executable, wrapper] if wrapper != "-" else None,
    )
    # Python restores default handlers at exit; a late SIGUSR1 must not kill it.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    print(
        json.dumps(
            {
                "status": result.status,
                "error": result.error,
                "seconds": time.monotonic() - start,
                "events": events,
            }
        )
    )


main()
