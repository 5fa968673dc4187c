"""Linux plumbing: one module per kernel mechanism, no policy knowledge.

Every raw call goes through :func:`agentsh_ipy._linux._syscall.check`, which
tests the return value (never a stale errno) and raises ``OSError``.
"""
