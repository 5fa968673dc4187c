"""A stand-in for SandboxClient with the same interface: ``wrap`` returns a
launch that runs the command through ``bash -c 'exec -a ...'`` (argv[0]
kept) with ``AGENTSH_FAKE=1`` added to its environment and the names in
``HIDDEN`` removed, so the hooks' argv/env rewrite can be checked exactly
without a daemon. Nothing is enforced."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HIDDEN = ("AGENTSH_FAKE_SECRET",)


@dataclass
class FakeWrapped:
    launch: str
    argv: list[str]
    env: dict[str, str]
    hidden_env: list[str] = field(default_factory=list)
    file: str | None = None  # the fake always wraps with a process, never inline
    preexec: Callable[[], None] | None = None


def _missing(name: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


class FakeClient:
    started: list[FakeClient] = []  # noqa: RUF012 (a test recorder)

    def __init__(self, on_event: Callable[[dict[str, Any]], None], **kwargs: Any) -> None:
        self.on_event = on_event
        self.kwargs = kwargs
        self.session = f"fake-{len(self.started)}"
        self.audit_path = str(kwargs.get("audit_path"))
        self.policy_name = "fake"
        self.policy_source = str(kwargs.get("policy_path") or "built-in")
        self.calls: list[dict[str, Any]] = []
        self.closed = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, *, on_event: Callable[[dict[str, Any]], None], **kwargs: Any) -> FakeClient:
        client = cls(on_event, **kwargs)
        cls.started.append(client)
        return client

    @property
    def alive(self) -> bool:
        return not self.closed

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cell: int | None = None,
        cell_id: str | None = None,
        inline: bool = False,
    ) -> FakeWrapped:
        if self.closed:
            raise RuntimeError("fake daemon is gone")
        base = dict(os.environ if env is None else env)
        name = executable if executable is not None else argv[0]
        if "/" in name:
            resolved = os.path.join(cwd or os.getcwd(), name)
            if not os.access(resolved, os.X_OK) or os.path.isdir(resolved):
                raise _missing(name)
        else:
            found = shutil.which(name, path=base.get("PATH", os.defpath))
            if found is None:
                raise _missing(name)
            resolved = found
        with self._lock:
            launch = f"{self.session}-L{len(self.calls)}"
            self.calls.append(
                {"launch": launch, "argv": list(argv), "executable": executable,
                 "env_given": env is not None, "cwd": cwd, "cell": cell, "cell_id": cell_id}
            )  # fmt: skip
        self.on_event(
            {"type": "exec", "op": "exec", "launch": launch, "cell": cell, "cell_id": cell_id,
             "argv": list(argv), "path": resolved, "decision": "allow", "rule": "fake"}
        )  # fmt: skip
        new_env = {k: v for k, v in base.items() if k not in HIDDEN}
        new_env["AGENTSH_FAKE"] = "1"
        wrapper = ["/bin/bash", "-c", 'exec -a "$0" "$@"', argv[0], resolved, *argv[1:]]
        return FakeWrapped(launch, wrapper, new_env, [k for k in HIDDEN if k in base])

    def settle(self, launches: Sequence[str], timeout: float = 5.0) -> list[str]:
        return []

    def forget(self, launch: str) -> None:
        pass

    def close(self) -> None:
        self.closed = True
