#!/usr/bin/env bash
# The sandbox's tests as in a default Docker 20.10 container: uid 1000, no
# capability, Docker's default seccomp profile (tests/container/launch.py).
#
#   tests/container/run.sh [PYTEST ARGS...]     as root, from any directory
#
# Without arguments: the integration, escape, notebook and sandboxed-kernel
# tests. The checkout is copied to a directory uid 1000 owns (the original
# may sit under /root); the package comes from $AGENTSH_VENV
# (/opt/agentsh-ipy-venv), installed from this checkout and readable by all.
# Prints `agentsh-ipy detect` first: the facilities the profile refuses and
# the mode the sandbox picks there.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${AGENTSH_VENV:-/opt/agentsh-ipy-venv}
[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (the launcher drops to uid 1000)" >&2; exit 2; }

# Not under /tmp or /var/tmp: the tests' scratch areas go under HOME, and
# the default policy lets a sandbox write the temp dirs.
WORK=$(mktemp -d /var/lib/agentsh-container.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/repo" "$WORK/home"
tar -C "$REPO" --exclude=.git --exclude=__pycache__ --exclude=.pytest_cache -cf - . \
    | tar -C "$WORK/repo" -xf -
chown -R 1000:1000 "$WORK"

launch() { /usr/bin/python3 "$REPO/tests/container/launch.py" --home "$WORK/home" -- "$@"; }
cd "$WORK/repo"
launch "$VENV/bin/python" -m agentsh_ipy.cli detect
if [ $# -eq 0 ]; then
    set -- tests/integration tests/escape tests/notebooks tests/sandboxed_kernel
fi
launch "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
