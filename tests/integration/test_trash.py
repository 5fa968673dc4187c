"""`agentsh-ipy trash restore` trusts nothing the sandbox could have put in
the trash (issue 18), as root and as uid 65534.

A restore runs outside the sandbox, as the user, later. The issue showed a
racing thread getting a forged entry into the trash, whose restore then
wrote an attacker's key to ~/.ssh/authorized_keys. Here the test itself
plays the part of a race that succeeded: it writes into the trash what the
sandbox could not have written through the rules, and checks that restore
refuses it and writes nothing. Controls: a genuine entry restores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agentsh_ipy.supervisor import Trash
from tests.conftest import TEST_POLICY, Area, linux_only, run_cli, sandbox, write_policy

pytestmark = linux_only

SOFT_DELETE = (
    "  - {name: keep-deletes, paths: ['${WORKSPACE}/**'], operations: [delete],"
    " decision: soft_delete}\n"
)


def soft_deleted(area: Area, name: str, text: str) -> tuple[Path, str]:
    """A genuine entry: the sandbox deletes ws/NAME under soft_delete."""
    policy = area.write(
        "p.yaml", TEST_POLICY.replace("file_rules:\n", "file_rules:\n" + SOFT_DELETE, 1)
    )
    victim = area.write(f"ws/{name}", text)
    r = sandbox(area, ["rm", name], policy=policy)
    assert r.returncode == 0, r.stderr
    [ev] = [
        e for e in r.of_type("file") if e["decision"] == "soft_delete" and e["path"] == str(victim)
    ]
    assert not victim.exists()
    return victim, str(ev["trash"])


def restore(area: Area, entry: str, *extra: str) -> tuple[int, str]:
    r = run_cli(area, ["trash", "restore", entry, "--workspace", str(area.ws), *extra])
    return r.returncode, r.stdout + r.stderr


def trash(area: Area) -> Path:
    return area.ws / ".agentsh-trash"


def test_a_genuine_entry_restores_once_and_never_overwrites(area: Area) -> None:
    victim, entry = soft_deleted(area, "notes.txt", "precious\n")
    listed = run_cli(area, ["trash", "list", "--workspace", str(area.ws)]).stdout
    assert f"{entry}  {victim}\n" in listed  # signed: no warning
    area.write("ws/notes.txt", "new\n")
    code, out = restore(area, entry)
    assert code == 1 and "exists; not overwriting it" in out
    assert victim.read_text() == "new\n"
    victim.unlink()
    code, out = restore(area, entry)
    assert code == 0, out
    assert victim.read_text() == "precious\n"
    assert not (trash(area) / entry).exists()


def test_a_forged_entry_is_not_restored(area: Area) -> None:
    # What a race that got past the rules could leave: an entry pointing at
    # a file the sandbox may not write, with the attacker's content.
    target = area.outside / "authorized_keys"
    forged = trash(area) / "20260101T000000-deadbeef"
    area.write(str((forged / "item").relative_to(area.root)), "ssh-ed25519 AAAA attacker\n")
    meta = {"original": str(target), "deleted_at": 1.0, "pid": 1, "syscall": "unlinkat"}
    area.write(str((forged / "meta.json").relative_to(area.root)), json.dumps(meta))
    # ... also with a signature field it made up
    forged2 = trash(area) / "20260101T000000-feedface"
    area.write(str((forged2 / "item").relative_to(area.root)), "attacker\n")
    area.write(
        str((forged2 / "meta.json").relative_to(area.root)), json.dumps({**meta, "mac": "0" * 64})
    )
    listed = run_cli(area, ["trash", "list", "--workspace", str(area.ws)]).stdout
    assert "deadbeef" in listed and "not recorded by agentsh-ipy" in listed
    for entry in (forged.name, forged2.name):
        code, out = restore(area, entry)
        assert code == 1 and "not recorded by agentsh-ipy" in out, out
    assert not target.exists()


def test_an_entry_whose_item_was_swapped_is_not_restored(area: Area) -> None:
    victim, entry = soft_deleted(area, "data.csv", "a,b\n")
    item = trash(area) / entry / "item"
    planted = area.write("ws/planted", "import os  # attacker\n")
    os.rename(planted, item)  # a different inode renamed over the genuine one
    code, out = restore(area, entry)
    assert code == 1 and "not the file agentsh-ipy moved there" in out, out
    assert not victim.exists()
    # The genuine inode, written to since: refused too.
    victim2, entry2 = soft_deleted(area, "data2.csv", "c,d\n")
    with open(trash(area) / entry2 / "item", "a") as f:
        f.write("appended\n")
    code, out = restore(area, entry2)
    assert code == 1 and "changed since" in out, out
    assert not victim2.exists()


def test_a_folder_swapped_for_a_symlink_is_not_followed(area: Area) -> None:
    area.mkdir("ws/project")
    _, entry = soft_deleted(area, "project/run.sh", "echo hi\n")
    (area.ws / "project").rmdir()
    os.symlink(area.outside, area.ws / "project")  # as a later cell could
    code, out = restore(area, entry)
    assert code == 1 and "symlink" in out, out
    assert not (area.outside / "run.sh").exists()


def test_restore_asks_the_policy(area: Area) -> None:
    victim, entry = soft_deleted(area, "kept.txt", "x\n")
    deny = area.write(
        "deny.yaml",
        TEST_POLICY.replace(
            "file_rules:\n",
            "file_rules:\n  - {name: no-kept, paths: ['${WORKSPACE}/kept.txt'],"
            " operations: [create], decision: deny}\n",
            1,
        ),
    )
    code, out = restore(area, entry, "--policy", str(deny))
    assert code == 1 and "rule no-kept" in out, out
    assert not victim.exists()
    code, out = restore(area, entry, "--policy", str(write_policy(area)))
    assert code == 0, out
    assert victim.read_text() == "x\n"


def test_the_sandbox_cannot_read_the_key(area: Area) -> None:
    soft_deleted(area, "any.txt", "x\n")  # the key exists now
    key = area.home / ".local" / "state" / "agentsh-ipy" / "trash.key"
    assert key.stat().st_size == 32 and key.stat().st_mode & 0o777 == 0o600
    r = sandbox(area, ["sh", "-c", f"od -An -tx1 {key} | head -c 20; echo rc=$?"],
                policy=write_policy(area))  # fmt: skip
    assert key.read_bytes()[:4].hex() not in r.stdout.replace(" ", "")
    assert any(e["rule"] == "hidden" and e["path"] == str(key) for e in r.denials()), r.events


def test_the_supervisor_moves_only_what_the_decision_named(area: Area, tmp_path: Path) -> None:
    # The decision was about ws/dir/secret; by the time the supervisor moves
    # it, ws/dir is a symlink to a folder outside: nothing there moves.
    outside = area.write("outside/secret", "key\n")
    os.symlink(area.outside, area.ws / "dir")
    t = Trash(str(area.ws), key_file=str(tmp_path / "key"))
    result, entry = t.put(str(area.ws / "dir" / "secret"), pid=1, syscall="unlinkat")
    assert result < 0
    assert outside.read_text() == "key\n"
    assert not (trash(area) / entry).exists()
