"""`agentsh-ipy kernel install` and `kernel list`, and the kernelspec data
the wheel ships (kernel/agentsh)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

SPEC_DIR = REPO / "kernel" / "agentsh"


def cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "XDG_"))}
    env.update(
        HOME=str(home),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=str(REPO),
    )
    return subprocess.run(
        [sys.executable, "-m", "agentsh_ipy.cli", *args],
        cwd=cwd or home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its chunks' CRCs."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, size = 8, (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{path}: bad CRC in {kind!r}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        pos += 12 + length
    return size


def test_shipped_kernelspec() -> None:
    spec = json.loads((SPEC_DIR / "kernel.json").read_text())
    # jupyter_client replaces a leading "python" with its own interpreter.
    # -P: the notebook's directory (the workspace) is not first on sys.path.
    assert spec["argv"] == ["python", "-P", "-m", "agentsh_ipy.kernel", "-f", "{connection_file}"]
    assert spec["display_name"] == "Python 3 (agentsh sandbox)"
    assert spec["language"] == "python"
    assert spec["interrupt_mode"] == "signal"
    assert png_size(SPEC_DIR / "logo-32x32.png") == (32, 32)
    assert png_size(SPEC_DIR / "logo-64x64.png") == (64, 64)
    # The build installs every file of it there, and inside the package.
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = sorted(str(p.relative_to(REPO)) for p in SPEC_DIR.iterdir())
    assert sorted(tool["data-files"]["share/jupyter/kernels/agentsh"]) == shipped
    assert tool["package-dir"]["agentsh_ipy._kernelspec"] == "kernel/agentsh"
    assert tool["package-data"]["agentsh_ipy._kernelspec"] == ["*"]


def test_install_with_policy_into_a_prefix(tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("version: 1\nname: strict\n")
    r = cli(
        "kernel", "install", "--prefix", str(tmp_path / "pfx"), "--name", "Strict",
        "--policy", "strict.yaml", home=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    dest = tmp_path / "pfx" / "share" / "jupyter" / "kernels" / "strict"
    assert f"installed kernelspec strict in {dest}" in r.stdout
    spec = json.loads((dest / "kernel.json").read_text())
    # This interpreter, and the policy by absolute path: the kernel starts
    # from any working directory whatever is first on PATH.
    assert spec["argv"] == [
        sys.executable, "-P", "-m", "agentsh_ipy.kernel", "-f", "{connection_file}",
        "--policy", str(policy),
    ]  # fmt: skip
    assert spec["display_name"] == "Python 3 (agentsh sandbox, strict.yaml)"
    assert spec["interrupt_mode"] == "signal"
    assert sorted(p.name for p in dest.iterdir()) == [
        "kernel.json",
        "logo-32x32.png",
        "logo-64x64.png",
    ]


def test_install_user_and_list(tmp_path: Path) -> None:
    # Another name than the wheel's own "agentsh": in a virtual environment
    # Jupyter prefers the environment's kernelspecs over the user's.
    r = cli("kernel", "install", "--user", "--name", "agentsh-user", "--display-name",
            "Sandboxed", home=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    dest = tmp_path / "jupyter-data" / "kernels" / "agentsh-user"
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec["display_name"] == "Sandboxed"
    assert "--policy" not in spec["argv"]
    listed = cli("kernel", "list", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"agentsh-user  {dest}  (policy: built-in)" in listed.stdout.splitlines()
    assert "python3" not in listed.stdout


def test_a_broken_policy_installs_nothing(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("version: 1\nfile_rules:\n  - {name: x, paths: [rel], decision: allow}\n")
    r = cli("kernel", "install", "--user", "--policy", str(policy), home=tmp_path)
    assert r.returncode == 1
    assert f"{policy}:3:" in r.stderr, r.stderr
    assert not (tmp_path / "jupyter-data" / "kernels").exists()


def test_a_missing_policy_or_a_bad_name_is_an_error(tmp_path: Path) -> None:
    r = cli("kernel", "install", "--user", "--policy", "nope.yaml", home=tmp_path)
    assert r.returncode == 1
    assert "nope.yaml" in r.stderr and "cannot read the policy" in r.stderr
    r = cli("kernel", "install", "--user", "--name", "a b", home=tmp_path)
    assert r.returncode == 1
    assert "Invalid kernel name 'a b'" in r.stderr
    r = cli("kernel", "install", "--user", "--sys-prefix", home=tmp_path)
    assert r.returncode == 2
    assert "not allowed with argument" in r.stderr
