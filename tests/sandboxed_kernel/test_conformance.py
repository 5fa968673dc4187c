"""jupyter_kernel_test's protocol conformance suite against the sandboxed
kernel.

This is protocol conformance, not enforcement: it runs as the invoking user
only (root in CI), with the built-in policy, in a scratch workspace. The
kernel is found by name through a kernelspec in a temporary JUPYTER_PATH,
as a frontend finds it.

The per-cell audit is itself a display_data, so every execution has one
more output than a plain IPython kernel: ``code_generate_error`` is left
unset (the library's test_error expects exactly one output, the error),
and the display_data samples use MIME types the audit display carries too
(text/html, text/plain), because the library checks its sample's MIME type
on every display_data of the cell. ``test_every_execution_ends_with_its_audit``
checks the audit display itself.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import jupyter_kernel_test as jkt  # the module: pytest would collect KernelTests itself
import pytest
from jupyter_client.manager import start_new_kernel
from jupyter_kernel_test.msgspec_v5 import validate_message

from ._harness import AUDIT_MIME, KERNEL_MODULE, PROFILE_DIRS, require_kernel_module

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

NAME = "agentsh-conformance"


class TestSandboxedKernelConformance(jkt.KernelTests):
    kernel_name = NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": "1 + 2 + 3", "result": "6"},
        {"code": "[n * n for n in range(4)]", "result": "[0, 1, 4, 9]"},
    ]
    code_display_data: ClassVar[list[dict[str, str]]] = [
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {"code": "from IPython.display import display; display('text')", "mime": "text/plain"},
        # the audit, for a cell that did something the sandbox decides
        {"code": "open('/etc/hostname').close()", "mime": AUDIT_MIME},
    ]
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "zi", "matches": {"zip"}},
    ]
    complete_code_samples: ClassVar[list[str]] = [
        "1",
        "print('hello, world')",
        "def f(x):\n  return x\n\n",
    ]
    incomplete_code_samples: ClassVar[list[str]] = ["print('''hello", "def f(x):\n  x = 1"]
    invalid_code_samples: ClassVar[list[str]] = ["import = 7q"]
    code_inspect_sample = "zip"
    code_page_something = "zip?"
    supported_history_operations = ("tail",)  # in memory: no earlier sessions
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    tmp: ClassVar[Path]

    @classmethod
    def setUpClass(cls) -> None:
        require_kernel_module()
        cls.tmp = Path(tempfile.mkdtemp(prefix="agentsh-conformance-"))
        kdir = cls.tmp / "jupyter" / "kernels" / NAME
        kdir.mkdir(parents=True)
        argv = [sys.executable, "-m", KERNEL_MODULE, "-f", "{connection_file}",
                "--audit", str(cls.tmp / "audit.jsonl")]  # fmt: skip
        (kdir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": argv,
                    "display_name": "Python 3 (agentsh sandbox, conformance)",
                    "language": "python",
                    "interrupt_mode": "signal",
                }
            )
        )
        ws, home, ipython = cls.tmp / "ws", cls.tmp / "home", cls.tmp / "ipython"
        for d in (ws, home, *(ipython / "profile_default" / p for p in PROFILE_DIRS)):
            d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "XDG_"))}
        env.pop("PYTEST_CURRENT_TEST", None)
        env.update(HOME=str(home), IPYTHONDIR=str(ipython), JUPYTER_PLATFORM_DIRS="1")
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = str(cls.tmp / "jupyter")  # where the spec is found
        try:
            cls.km, cls.kc = start_new_kernel(kernel_name=NAME, cwd=str(ws), env=env)
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_the_kernelspec_is_the_sandboxed_kernel(self) -> None:
        assert self.km.kernel_spec is not None
        assert self.km.kernel_spec.argv[1:3] == ["-m", KERNEL_MODULE]
        _, outputs = self.execute_helper("import os; print(open('/proc/self/status').read())")
        text = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
        assert "\nSeccomp:\t2" in text, "the code does not run under the sandbox's filter"

    def test_every_execution_ends_with_its_audit(self) -> None:
        # ... when the sandbox decided something in it; `1 + 1` gets none.
        self.flush_channels()
        for code in ("print('hello, world')", "1 + 1"):
            msg_id = self.kc.execute(code=code, stop_on_error=False)
            while True:
                msg = self.kc.get_iopub_msg(timeout=15)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                assert AUDIT_MIME not in msg["content"].get("data", {}), (code, msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        for code in ("open('/etc/hostname').close()",
                     "open('/etc/hostname').close()\nraise ValueError('x')"):  # fmt: skip
            msg_id = self.kc.execute(code=code, stop_on_error=False)
            outputs = []
            while True:
                msg = self.kc.get_iopub_msg(timeout=15)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                validate_message(msg, msg["msg_type"], msg_id)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
                if msg["msg_type"] not in ("status", "execute_input"):
                    outputs.append(msg)
            assert outputs[-1]["msg_type"] == "display_data", (code, outputs)
            data = outputs[-1]["content"]["data"]
            assert {AUDIT_MIME, "text/html", "text/plain"} <= set(data)
            assert isinstance(data[AUDIT_MIME]["events"], list)
            reply = self.kc.get_shell_msg(timeout=15)
            while reply["parent_header"].get("msg_id") != msg_id:
                reply = self.kc.get_shell_msg(timeout=15)
            assert reply["content"]["execution_count"] == data[AUDIT_MIME]["cell"]
