"""Cells exercising every routed launch form. Each stores what the caller
observes (return codes, output, errors) in ``R[name]`` or prints it, so a
sandboxed run can be compared with a plain one."""

from __future__ import annotations

SETUP = """\
import asyncio, os, subprocess, sys, threading
R = {}
"""

# (name, code): every cell's processes are allowed by the default policy.
FORMS: list[tuple[str, str]] = [
    ("bang", "!echo out; echo err >&2; exit 3\nR['bang'] = _exit_code"),
    ("bang_signal", "!{sys.executable} -c 'import os; os.kill(os.getpid(), 15)'\n"
                    "R['bang_signal'] = _exit_code"),
    ("bangbang", "!!echo bb; exit 2"),
    ("assign", "x = !echo out; echo err >&2; exit 3\nR['assign'] = list(x)"),
    ("sx", "y = %sx echo sx\nR['sx'] = list(y)"),
    ("system", "z = %system echo sys\nR['system'] = list(z)"),
    ("alias", "%alias agentshalias echo alias-%s\n%agentshalias hello\nR['alias'] = _exit_code"),
    ("pip", "%pip --version\nR['pip'] = _exit_code"),
    ("bash", "%%bash\necho out; echo err >&2"),
    ("sh", "%%sh\necho sh-out; echo sh-err >&2"),
    ("script", "%%script sh\necho script-out"),
    ("run", "p = subprocess.run(['sh', '-c', 'echo out; echo err >&2; exit 3'],"
            " capture_output=True, text=True)\nR['run'] = (p.returncode, p.stdout, p.stderr)"),
    ("popen_exe", "p = subprocess.run(['myname', '-c', 'echo $0'], executable='/bin/sh',"
                  " capture_output=True, text=True)\nR['popen_exe'] = (p.returncode, p.stdout)"),
    ("popen_env", "p = subprocess.Popen([b'sh', b'-c', b'echo $ONLY; exit 4'],"
                  " stdout=subprocess.PIPE, env={'PATH': '/usr/bin:/bin', 'ONLY': 'one'})\n"
                  "R['popen_env'] = (p.communicate()[0].decode(), p.wait())"),
    ("check_output", "R['check_output'] = subprocess.check_output('echo $0', shell=True,"
                     " text=True)"),
    ("run_signal", "R['run_signal'] = subprocess.run(['sh', '-c', 'kill -TERM $$']).returncode"),
    ("missing", "try:\n    subprocess.run(['agentsh-no-such-program'])\n"
                "except FileNotFoundError as e:\n"
                "    R['missing'] = (type(e).__name__, e.errno, e.filename)"),
    ("os_system", "R['os_system'] = (os.system('echo sys > os_system.txt; exit 3'),"
                  " os.system('kill -TERM $$'), open('os_system.txt').read())"),
    ("os_popen", "f = os.popen('echo pop; exit 3')\nR['os_popen'] = (f.read(), f.close())"),
    ("spawnv", "R['spawnv'] = os.spawnv(os.P_WAIT, '/bin/sh', ['sh', '-c', 'exit 4'])"),
    ("spawnlp", "R['spawnlp'] = os.spawnlp(os.P_WAIT, 'sh', 'sh', '-c', 'exit 5')"),
    ("spawnv_missing", "R['spawnv_missing'] = os.spawnv(os.P_WAIT, '/no/such/prog', ['x'])"),
    ("posix_spawn", "pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'exit 6'], os.environ)\n"
                    "R['posix_spawn'] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])"),
    ("posix_spawnp", "pid = os.posix_spawnp('sh', ['sh', '-c', 'exit 7'], os.environ)\n"
                     "R['posix_spawnp'] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])"),
    ("asyncio", """\
async def _a():
    p = await asyncio.create_subprocess_exec('sh', '-c', 'echo ax; exit 3',
                                             stdout=asyncio.subprocess.PIPE)
    o, _ = await p.communicate()
    q = await asyncio.create_subprocess_shell('echo ash; exit 4', stdout=asyncio.subprocess.PIPE)
    o2, _ = await q.communicate()
    return (p.returncode, o.decode(), q.returncode, o2.decode())
R['asyncio'] = asyncio.run(_a())"""),
    ("thread", """\
_out = []
_t = threading.Thread(target=lambda: _out.append(subprocess.run(
    ['sh', '-c', 'echo th; exit 2'], capture_output=True, text=True).stdout))
_t.start(); _t.join()
R['thread'] = _out"""),
    # SIGPIPE and SIGXFSZ as each form's plain child has them (Popen resets
    # them, os.system and `!cmd` inherit Python's SIG_IGN): `yes | head` works.
    ("signals", """\
import re
def _ign(text):
    return [int(m, 16) & 0x1001000 for m in re.findall(r'SigIgn:\\s*([0-9a-f]+)', text)]
_b = !grep SigIgn /proc/self/status
_p = subprocess.run(['grep', 'SigIgn', '/proc/self/status'], capture_output=True, text=True)
os.system('grep SigIgn /proc/self/status > signals.txt')
R['signals'] = (_ign(' '.join(_b)), _ign(_p.stdout), _ign(open('signals.txt').read()),
                subprocess.run('yes | head -1', shell=True, capture_output=True).stderr)"""),
]  # fmt: skip

# What each form must hand to the sandbox (a word its wrapped argv contains).
ROUTED_WORD = {
    "bang": "echo out", "bang_signal": "os.kill", "bangbang": "echo bb", "assign": "echo out",
    "sx": "echo sx", "system": "echo sys", "alias": "alias-hello", "pip": "pip",
    "bash": "bash", "sh": "sh", "script": "sh", "run": "echo out", "popen_exe": "myname",
    "popen_env": "echo $ONLY", "check_output": "echo $0", "run_signal": "kill -TERM",
    "os_system": "os_system.txt", "os_popen": "echo pop", "spawnv": "exit 4",
    "spawnlp": "exit 5", "posix_spawn": "exit 6", "posix_spawnp": "exit 7", "asyncio": "echo ax",
    "thread": "echo th", "signals": "SigIgn",
}  # fmt: skip


def cells(sandboxed: bool, magic: str = "%%agentsh") -> list[str]:
    head = f"{magic}\n" if sandboxed else ""
    return [SETUP] + [head + code for _, code in FORMS]
