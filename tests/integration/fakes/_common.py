"""Fake wrappers: the real wrapper with one step broken (fault injection).

Each fake is run as ``python FAKE.py <wrapper args>``; it records its pid in
$AGENTSH_TEST_PIDFILE so the test can check it did not outlive the failure.
"""

import os
import sys


def run(patch):  # type: ignore[no-untyped-def]
    from agentsh_ipy._linux import wrapper

    pidfile = os.environ.get("AGENTSH_TEST_PIDFILE")
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
    patch(wrapper)
    sys.exit(wrapper.main(sys.argv[1:]))
