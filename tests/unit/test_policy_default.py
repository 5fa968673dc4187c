"""The packaged default policy (agentsh_ipy/policy/default.yaml)."""

from __future__ import annotations

import pytest

from agentsh_ipy.policy import (
    FILE_OPERATIONS,
    Decision,
    Limits,
    Policy,
    PolicyError,
    default_policy_text,
    load_default,
)

VARS = {"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"}
WRITE_OPS = [op for op in FILE_OPERATIONS if op != "read"]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_default(VARS)


def test_default_policy_loads(policy: Policy) -> None:
    assert policy.name == "default"
    assert policy.approval_timeout == 60.0
    assert policy.defaults.file == "deny"
    assert policy.defaults.command == "allow"
    assert policy.defaults.network == "deny"
    assert policy.defaults.unix_socket == "deny"
    assert policy.host_local == "closed"
    assert policy.defaults.signal == "deny"
    assert default_policy_text().startswith("# agentsh-ipy default policy")
    assert Policy.parse(default_policy_text(), "x", VARS) == Policy.parse(
        default_policy_text(), "x", VARS
    )


def test_default_policy_needs_all_variables() -> None:
    with pytest.raises(PolicyError) as info:
        load_default({"HOME": "/home/u"})
    reasons = {reason for _, _, reason in info.value.problems}
    assert reasons == {"variable ${WORKSPACE} is not set", "variable ${TMPDIR} is not set"}
    assert all(line > 0 for _, line, _ in info.value.problems)


CREDENTIALS = [
    "/home/u/.ssh",
    "/home/u/.ssh/id_rsa",
    "/home/u/.ssh/config",
    "/home/u/.aws/credentials",
    "/home/u/.gnupg/private-keys-v1.d/x.key",
    "/home/u/.config/gh/hosts.yml",
    "/home/u/.config/gcloud/application_default_credentials.json",
    "/home/u/.docker/config.json",
    "/home/u/.netrc",
    "/home/u/.git-credentials",
    "/home/u/.pypirc",
    "/home/u/.kube/config",
    "/.env",
    "/w/.env",
    "/w/app/deep/.env",
    "/w/.env.local",
    "/home/u/project/.env.production",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/90-cloud-init",
]


@pytest.mark.parametrize("path", CREDENTIALS)
@pytest.mark.parametrize("op", FILE_OPERATIONS)
def test_credentials_denied_for_every_op(policy: Policy, op: str, path: str) -> None:
    decision = policy.check_file(op, path)
    assert (decision.decision, decision.rule) == ("deny", "credentials")
    assert not decision.allowed
    assert decision.message


def test_credentials_win_even_when_workspace_is_home() -> None:
    p = load_default({"WORKSPACE": "/home/u", "HOME": "/home/u", "TMPDIR": "/tmp"})
    assert p.check_file("read", "/home/u/.ssh/id_rsa").rule == "credentials"
    assert p.check_file("rename", "/home/u/.ssh").rule == "credentials"
    assert p.check_file("write", "/home/u/notes.txt").rule == "workspace"


@pytest.mark.parametrize(
    ("op", "path", "decision", "rule"),
    [
        # workspace: everything
        ("read", "/w", "allow", "workspace"),
        ("write", "/w/a.py", "allow", "workspace"),
        ("create", "/w/new/file", "allow", "workspace"),
        ("delete", "/w/a.py", "allow", "workspace"),
        ("mkdir", "/w/build", "allow", "workspace"),
        ("rename", "/w/a", "allow", "workspace"),
        ("chmod", "/w/run.sh", "allow", "workspace"),
        ("write", "/w/.envrc", "allow", "workspace"),  # not a .env file
        ("write", "/w/env.txt", "allow", "workspace"),
        # temporary directories
        ("write", "/tmp/x", "allow", "temp"),
        ("mkdir", "/tmp/a/b", "allow", "temp"),
        ("write", "/var/tmp/x", "allow", "temp"),
        ("write", "/dev/shm/sem.x", "allow", "temp"),
        # devices
        ("write", "/dev/null", "allow", "devices"),
        ("create", "/dev/null", "allow", "devices"),
        ("read", "/dev/urandom", "allow", "devices"),
        ("write", "/dev/tty", "allow", "devices"),
        ("write", "/dev/pts/3", "allow", "devices"),
        ("write", "/dev/fd/1", "allow", "devices"),
        ("write", "/proc/self/fd/2", "allow", "devices"),
        ("delete", "/dev/null", "deny", "devices-private"),
        ("chmod", "/dev/null", "deny", "devices-private"),
        ("write", "/dev/sda", "deny", "devices-private"),
        ("read", "/dev/sda", "deny", "devices-private"),
        ("read", "/dev/loop0", "deny", "devices-private"),
        ("read", "/dev/mapper/root", "deny", "devices-private"),
        ("read", "/dev/tty1", "deny", "devices-private"),
        ("read", "/dev/vcs1", "deny", "devices-private"),
        ("read", "/dev/input/event0", "deny", "devices-private"),
        ("read", "/dev/mem", "deny", "devices-private"),
        ("read", "/dev/stdin", "allow", "devices"),
        ("read", "/dev", "allow", "read-only"),
        ("write", "/dev/mem", "deny", "devices-private"),
        # read-only everywhere else
        ("read", "/", "allow", "read-only"),
        ("read", "/usr/bin/python3", "allow", "read-only"),
        ("read", "/usr/lib/python3.11/os.py", "allow", "read-only"),
        ("read", "/etc/passwd", "allow", "read-only"),
        ("read", "/home/u/.bashrc", "allow", "read-only"),
        ("read", "/home/u/.config/other/x", "allow", "read-only"),
        # writes outside are denied by default
        ("write", "/etc/passwd", "deny", "default:file"),
        ("create", "/etc/cron.d/evil", "deny", "default:file"),
        ("delete", "/etc/hosts", "deny", "default:file"),
        ("write", "/usr/bin/python3", "deny", "default:file"),
        ("write", "/home/u/.bashrc", "deny", "default:file"),
        ("mkdir", "/home/u/new", "deny", "default:file"),
        ("delete", "/", "deny", "default:file"),
        ("rename", "/home/u/.config", "deny", "default:file"),
        ("write", "/wx/a", "deny", "default:file"),  # a sibling of the workspace
        ("write", "/tmpx", "deny", "default:file"),
        # other processes' environments
        ("read", "/proc/1/environ", "deny", "process-environ"),
        ("read", "/proc/self/environ", "deny", "process-environ"),
        ("read", "/proc/12/task/13/environ", "deny", "process-environ"),
        ("read", "/proc/1/cmdline", "allow", "read-only"),
    ],
)
def test_default_file_decisions(
    policy: Policy, op: str, path: str, decision: str, rule: str
) -> None:
    got = policy.check_file(op, path)
    assert (got.decision, got.rule) == (decision, rule)


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "-rf", "/"],
        ["rm", "-fr", "/"],
        ["rm", "-r", "-f", "/"],
        ["rm", "--recursive", "--force", "/"],
        ["rm", "-rf", "/*"],
        ["rm", "-rf", "--no-preserve-root", "/"],
        ["rm", "-rf", "--", "/"],
        ["rm", "-rf", "//"],
        ["rm", "-rf", "/."],
        ["rm", "-rf", "~"],
        ["rm", "-rf", "~/"],
        ["rm", "-rf", "~/*"],
        ["rm", "-rf", "$HOME"],
        ["rm", "-rf", "${HOME}/"],
        ["rm", "-rf", "/home/u"],
        ["rm", "-rf", "/home/u/"],
        ["rm", "-rf", "/home/u/*"],
        # what a shell turns "rm -rf /*" into
        ["rm", "-rf", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/usr", "/var"],
        ["rm", "-rf", "/usr"],
        ["rm", "-rf", "/etc/"],
        ["rm", "-rf", "/usr/*"],
        ["rm", "-rf", "build", "/"],
    ],
)
def test_rm_root_denied(policy: Policy, argv: list[str]) -> None:
    for path in ("/bin/rm", "/usr/bin/rm"):
        got = policy.check_command(path, argv)
        assert (got.decision, got.rule) == ("deny", "rm-root"), (path, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "-rf", "./build"],
        ["rm", "-rf", "/tmp/x"],
        ["rm", "-rf", "build", "dist"],
        ["rm", "-f", "/w/a.txt"],
        ["rm", "-rf", "/home/u/proj/build"],
        ["rm", "-rf", "/home/user2"],
        ["rm", "-rf", "/usr/local/share/x"],
        ["rm", "-rf", "~/tmp"],
        ["rm", "-rf", "/w"],
        ["rm", "x*"],
        ["rm"],
    ],
)
def test_rm_elsewhere_allowed(policy: Policy, argv: list[str]) -> None:
    got = policy.check_command("/usr/bin/rm", argv)
    assert (got.decision, got.rule) == ("allow", "default:command")


@pytest.mark.parametrize(
    ("path", "argv", "rule"),
    [
        ("/sbin/mkfs", ["mkfs", "/dev/sdb1"], "make-filesystem"),
        ("/usr/sbin/mkfs.ext4", ["mkfs.ext4", "/dev/sdb1"], "make-filesystem"),
        ("/usr/sbin/mkfs.xfs", ["mkfs.xfs", "x.img"], "make-filesystem"),
        ("/bin/dd", ["dd", "if=/dev/zero", "of=/dev/sda"], "dd-to-disk"),
        ("/bin/dd", ["dd", "if=x.img", "of=/dev/nvme0n1", "bs=4M"], "dd-to-disk"),
        ("/bin/dd", ["dd", "of=/dev/vdb"], "dd-to-disk"),
        ("/sbin/shutdown", ["shutdown", "-h", "now"], "power"),
        ("/sbin/reboot", ["reboot"], "power"),
        ("/sbin/poweroff", ["poweroff"], "power"),
        ("/sbin/halt", ["halt"], "power"),
        ("/bin/systemctl", ["systemctl", "reboot"], "power-systemctl"),
    ],
)
def test_destructive_commands_denied(policy: Policy, path: str, argv: list[str], rule: str) -> None:
    got = policy.check_command(path, argv)
    assert (got.decision, got.rule) == ("deny", rule)


@pytest.mark.parametrize(
    ("path", "argv"),
    [
        ("/bin/dd", ["dd", "if=/dev/zero", "of=/w/disk.img"]),
        ("/bin/dd", ["dd", "if=/dev/sda", "of=/w/backup.img"]),
        ("/bin/systemctl", ["systemctl", "status", "reboot.target"]),
        ("/usr/bin/python3", ["python3", "-c", "print(1)"]),
        ("/usr/bin/git", ["git", "status"]),
        ("/usr/bin/pip", ["pip", "install", "numpy"]),
    ],
)
def test_ordinary_commands_allowed(policy: Policy, path: str, argv: list[str]) -> None:
    assert policy.check_command(path, argv).rule == "default:command"


@pytest.mark.parametrize(
    ("op", "ip", "port", "decision", "rule"),
    [
        # This host's services are closed (the sandbox's own sockets aside).
        ("connect", "127.0.0.1", 8888, "deny", "host-local"),
        ("send", "127.0.0.53", 53, "deny", "host-local"),
        ("connect", "::1", 5432, "deny", "host-local"),
        ("connect", "::ffff:127.0.0.1", 80, "deny", "host-local"),
        ("connect", "0.0.0.0", 80, "deny", "host-local"),
        ("send", "224.0.0.251", 5353, "deny", "host-local"),
        ("send", "255.255.255.255", 67, "deny", "host-local"),
        # Servers of its own on loopback, not on the wildcard address.
        ("bind", "127.0.0.1", 0, "allow", "own-servers"),
        ("bind", "::1", 8888, "allow", "own-servers"),
        ("connect", "8.8.8.8", 443, "deny", "default:network"),
        ("connect", "::ffff:8.8.8.8", 443, "deny", "default:network"),
        ("connect", "2606:4700::1111", 443, "deny", "default:network"),
        ("bind", "0.0.0.0", 8888, "deny", "default:network"),
        ("send", "10.0.0.1", 53, "deny", "default:network"),
    ],
)
def test_default_network(
    policy: Policy, op: str, ip: str, port: int, decision: str, rule: str
) -> None:
    got = policy.check_network(op, ip, port)
    assert (got.decision, got.rule) == (decision, rule)


@pytest.mark.parametrize(
    ("op", "path", "abstract", "decision", "rule"),
    [
        ("connect", "/var/run/docker.sock", False, "deny", "container-engines"),
        ("connect", "/run/docker.sock", False, "deny", "container-engines"),
        ("connect", "/run/user/1000/docker.sock", False, "deny", "container-engines"),
        ("connect", "/tmp/ssh-XXXXabc/agent.1234", False, "deny", "credential-agents"),
        ("connect", "/home/u/.gnupg/S.gpg-agent", False, "deny", "credential-agents"),
        ("connect", "/run/user/1000/gnupg/S.gpg-agent", False, "deny", "credential-agents"),
        # A bind creates a file: the file rules decide it.
        ("bind", "/run/docker.sock", False, "deny", "default:file"),
        ("bind", "/w/server.sock", False, "allow", "workspace"),
        ("bind", "/home/u/.gnupg/S.fake", False, "deny", "credentials"),
        ("bind", "/tmp/.X11-unix/X9", True, "allow", "default:unix-bind"),
        # Nothing the sandbox did not bind itself is reachable.
        ("connect", "/run/user/1000/bus", False, "deny", "default:unix_socket"),
        ("connect", "/tmp/.X11-unix/X0", True, "deny", "default:unix_socket"),
        ("connect", "/w/kernel.sock", False, "deny", "default:unix_socket"),
    ],
)
def test_default_unix(
    policy: Policy, op: str, path: str, abstract: bool, decision: str, rule: str
) -> None:
    got = policy.check_unix(op, path, abstract)
    assert (got.decision, got.rule) == (decision, rule)


def test_default_own_sockets(policy: Policy) -> None:
    """What the sandbox holds itself is reachable; what a rule denies stays denied."""
    yes = lambda: True  # noqa: E731
    assert policy.check_network("connect", "127.0.0.1", 8888, own=yes) == Decision(
        "allow", "own-sandbox", "bound inside this sandbox"
    )
    assert policy.check_network("send", "::1", 53, own=yes).rule == "own-sandbox"
    assert policy.check_unix("connect", "/w/s.sock", False, own=yes).rule == "own-sandbox"
    assert policy.check_unix("connect", "x", True, own=yes).rule == "own-sandbox"
    got = policy.check_unix("connect", "/run/docker.sock", False, own=yes)
    assert (got.decision, got.rule) == ("deny", "container-engines")
    no = policy.check_unix("connect", "/w/s.sock", False, own=lambda: False)
    assert no == Decision("deny", "default:unix_socket", "not bound inside this sandbox")


@pytest.mark.parametrize(
    "path",
    [
        "/home/u/.local/share/jupyter/runtime/kernel-1f2e.json",
        "/tmp/kernel-v2-1234abc.json",
        "/w/jpserver-4242.json",
        "/w/jpserver-4242-open.html",
        "/home/u/.local/share/jupyter/runtime/nbserver-17-open.html",
        "/home/u/.local/share/jupyter/runtime/nbserver-17.json",
        "/home/u/.local/share/jupyter/runtime/jupyter_cookie_secret",
    ],
)
def test_default_hides_jupyter_secrets(policy: Policy, path: str) -> None:
    for op in FILE_OPERATIONS:
        got = policy.check_file(op, path)
        assert (got.decision, got.rule) == ("deny", "jupyter-secrets")


@pytest.mark.parametrize("path", ["/run/nscd/socket", "/var/run/nscd/socket"])
def test_default_refuses_the_name_service_cache_by_name(policy: Policy, path: str) -> None:
    for op in ("connect", "send"):
        got = policy.check_unix(op, path, False, own=lambda: False)
        assert (got.decision, got.rule) == ("deny", "name-service-cache")
        assert "DNS" in got.message


def test_default_env(policy: Policy) -> None:
    env = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "GITHUB_TOKEN": "1",
        "HF_TOKEN": "2",
        "AWS_ACCESS_KEY_ID": "3",
        "AWS_SECRET_ACCESS_KEY": "4",
        "AWS_REGION": "5",
        "OPENAI_API_KEY": "6",
        "ANTHROPIC_API_KEY": "7",
        "MY_SECRET_THING": "8",
        "STRIPE_KEY": "9",
        "DB_PASSWORD": "10",
        "SSH_AUTH_SOCK": "11",
        "TOKEN_COUNT": "12",
        "KEYBOARD": "13",
    }
    kept, hidden = policy.filter_env(env)
    assert hidden == [
        "ANTHROPIC_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "HF_TOKEN",
        "MY_SECRET_THING",
        "OPENAI_API_KEY",
        "SSH_AUTH_SOCK",
        "STRIPE_KEY",
    ]
    assert kept == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "TOKEN_COUNT": "12",
        "KEYBOARD": "13",
    }


def test_default_protect(policy: Policy) -> None:
    q = policy.protect(["/w/.agentsh/audit.jsonl", "/w/policy.yaml"])
    assert q.check_file("write", "/w/.agentsh/audit.jsonl").rule == "protected:agentsh-state"
    assert q.check_file("delete", "/w/policy.yaml").rule == "protected:agentsh-state"
    assert q.check_file("read", "/w/policy.yaml").rule == "workspace"
    assert q.check_file("write", "/w/other.py").rule == "workspace"


@pytest.mark.parametrize("signal", range(65))
def test_default_signals(policy: Policy, signal: int) -> None:
    # The sandbox may signal its own tree (signal 0, the existence probe,
    # included); the supervisor and every other process are unreachable.
    assert policy.check_signal(signal, "sandbox") == Decision("allow", "own-tree")
    assert policy.check_signal(signal, "outside") == Decision("deny", "default:signal")


def test_default_signal_rules(policy: Policy) -> None:
    assert [r.name for r in policy.signal_rules] == ["own-tree"]
    assert policy.signal_rules[0].targets == frozenset({"sandbox"})


def test_default_limits(policy: Policy) -> None:
    assert policy.limits == Limits(max_processes=512, wall_clock=None, memory=None)


def test_default_uses_no_redirect_or_soft_delete(policy: Policy) -> None:
    basic = {"allow", "deny", "audit", "approve"}
    decisions = {
        *(r.decision for r in policy.file_rules),
        *(r.decision for r in policy.command_rules),
        *(r.decision for r in policy.network_rules),
        *(r.decision for r in policy.unix_socket_rules),
        *(r.decision for r in policy.signal_rules),
    }
    assert decisions <= basic
    assert all(r.redirect is None for r in policy.command_rules)
