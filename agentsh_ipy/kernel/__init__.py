"""The sandboxed Jupyter kernel, "Python 3 (agentsh sandbox)".

Jupyter starts ``python -m agentsh_ipy.kernel -f CONNECTION_FILE``: that
process is the supervisor, and the IPython kernel runs inside the sandbox
with all of its threads and children. See ``_app`` for the process model and
``_proxy`` for how the supervisor sees the kernel protocol.
"""

# Set in the environment of the kernel it confines (the session id): the
# magic, loaded there, knows the whole kernel is sandboxed already.
KERNEL_SESSION_ENV = "AGENTSH_IPY_KERNEL_SESSION"
# Also set there, for ``%agentsh status``: the policy (name and source) and
# the audit log's path. Informational only: nothing is decided by them.
KERNEL_POLICY_ENV = "AGENTSH_IPY_KERNEL_POLICY"
KERNEL_AUDIT_ENV = "AGENTSH_IPY_KERNEL_AUDIT"
