"""The sandbox's cache home: where the variables point, and that the rule
opening it comes after the policy's own (its denials still apply)."""

from __future__ import annotations

from pathlib import Path

from agentsh_ipy import policy as pol
from agentsh_ipy.supervisor import _cache

POLICY = """\
version: 1
name: t
file_rules:
  - {name: no-env, paths: ["/**/.env"], operations: ["*"], decision: deny}
  - {name: read-only, paths: ["/", "/**"], operations: [read], decision: allow}
"""


def test_home_follows_the_supervisors_environment(tmp_path: Path) -> None:
    h, c = str(tmp_path / "h"), str(tmp_path / "c")
    assert _cache.cache_home({"HOME": h}) == f"{h}/.cache/agentsh-ipy/sandbox"
    assert _cache.cache_home({"HOME": h, "XDG_CACHE_HOME": c}) == f"{c}/agentsh-ipy/sandbox"


def test_every_variable_points_inside_the_home() -> None:
    env = _cache.cache_env("/c/agentsh-ipy/sandbox")
    assert set(env) >= {"XDG_CACHE_HOME", "PIP_CACHE_DIR", "MPLCONFIGDIR", "SCIKIT_LEARN_DATA",
                        "HF_HOME", "TORCH_HOME", "KERAS_HOME", "npm_config_cache"}  # fmt: skip
    assert all(v.startswith("/c/agentsh-ipy/sandbox/") for v in env.values())
    assert len(set(env.values())) == len(env)  # one directory each


def test_the_cache_rule_comes_last() -> None:
    p = pol.Policy.parse(POLICY, "t.yaml", {}).allow_tree(_cache.RULE, "/c/s", "own cache")
    assert p.check_file("create", "/c/s/pip/x.whl") == pol.Decision(
        "allow", _cache.RULE, "own cache"
    )
    assert p.check_file("write", "/c/s").decision == "allow"
    assert p.check_file("write", "/c/s/.env").rule == "no-env"  # the policy's denial first
    assert p.check_file("write", "/c/other").decision == "deny"
