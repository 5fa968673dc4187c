"""JavaScript in the sandboxed kernel's outputs does not run in JupyterLab
(issue 13, "what the frontend renders"), with the server as root and as
uid 65534.

A real JupyterLab on 127.0.0.1 (a random token; HOME and every Jupyter
directory in the test's scratch area, the sandboxed kernelspec ``agentsh``
first on its JUPYTER_PATH) is driven by Debian's Chromium through Playwright. Every
request the browser makes to a host other than 127.0.0.1 is aborted.

The notebook has one cell per way an output can carry script:

* ``application/javascript`` (``IPython.display.Javascript``);
* ``text/html`` with a ``<script>``;
* ``text/html`` with an ``<img onerror>``;
* ``text/markdown`` with raw HTML ``<img onerror>`` (``IPython.display.Markdown``);
* ``image/svg+xml`` with ``onload`` and a ``<script>`` (``IPython.display.SVG``);
* ``text/html`` with an ``<a href="javascript:..." target=_self>``, which the test
  clicks;

and a benign cell: an HTML table and a printed line. Each payload, if it
runs, does what a hostile cell wants from the browser: with the ``_xsrf``
cookie read from ``document.cookie`` it writes ``pwned-TAG.txt`` through
``/api/contents``, starts a (plain, unsandboxed) kernel and a terminal, and
logs a marker to the console.

* the control: in a plain ``python3`` ipykernel of the same server, in the
  same browser, the payloads DO all of that (the files, kernels and
  terminals appear, the markers are logged): the test sees the harm when it
  happens. All but the SVG's: JupyterLab shows an SVG through an ``<img>``,
  where its script never runs (checked in the sandbox all the same);
* in the sandboxed kernel, after every cell ran and the link was clicked: no
  ``pwned-*`` file, no terminal, no kernel but the notebook's own (asked of
  the server by the test, with the token, not by the browser), no marker in
  the console, and nothing left in the shown outputs that could run script
  (script elements, ``on*`` attributes, ``javascript:`` URLs);
* the benign table and line are still shown: refusing script does not blank
  ordinary output;
* the audit under each attacking cell names the refusal (rule
  ``frontend-outputs``; the kernel runs with ``--display full``, whose table
  shows each event's rule).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nbformat
import pytest

from tests.sandboxed_kernel._harness import (
    SkArea,
    area_processes,
    make_user,
    require_kernel_module,
    sandboxed_area,
    sk_env,
    write_kernelspec,
)
from tests.sandboxed_kernel.test_jupyter_server import Server, _stop

if TYPE_CHECKING:  # playwright is imported where the browser starts
    from playwright.sync_api import Browser, Locator, Request, Route

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

SANDBOXED = "agentsh"
PLAIN = "python3"
MARKER = "agentsh-test-pwned"
RULE = "frontend-outputs"
# How long the sandboxed run waits for a payload's requests to reach the
# server, once after its last cell and once after the click. The control's
# harm shows within 0.4-0.8 s of either on an idle 2-core machine (its times
# are printed).
SETTLE = 5.0

# A payload: what script in an output can do with the server's origin. It
# acts once per page (an <img> may fail to load more than once).
PAYLOAD = """\
(function () {
  var done = window.agentshTestPwned = window.agentshTestPwned || {};
  if (done[@TAG@]) { return; }
  done[@TAG@] = true;
  var m = document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]*)/);
  var h = {'Content-Type': 'application/json', 'X-XSRFToken': m ? m[1] : ''};
  console.log(@MARKER@ + ' ' + @TAG@);
  fetch('/api/contents/pwned-' + @TAG@ + '.txt', {method: 'PUT', headers: h,
    body: JSON.stringify({type: 'file', format: 'text', content: @TAG@})});
  fetch('/api/kernels', {method: 'POST', headers: h, body: '{}'});
  fetch('/api/terminals', {method: 'POST', headers: h, body: '{}'});
})();
"""


def payload(tag: str) -> str:
    return PAYLOAD.replace("@TAG@", json.dumps(tag)).replace("@MARKER@", json.dumps(MARKER))


def inline(tag: str) -> str:
    """The payload as one expression without quotes of its own, for an
    attribute or a ``javascript:`` URL."""
    return f"eval(atob('{base64.b64encode(payload(tag).encode()).decode()}'))"


def display(kind: str, data: str) -> str:
    """A cell that displays ``data`` as IPython.display.KIND."""
    return f"from IPython.display import {kind}, display\ndisplay({kind}({data!r}))"


def svg(tag: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"'
        f' onload="{inline(tag)}"><script>{inline(tag)}</script>'
        '<rect width="40" height="40" fill="teal"/></svg>'
    )


# carrier -> the cell that displays it, with TAG's payload
CARRIERS: dict[str, Callable[[str], str]] = {
    "javascript": lambda tag: display("Javascript", payload(tag)),
    "script": lambda tag: display("HTML", f"<p>script</p><script>{inline(tag)}</script>"),
    "onerror": lambda tag: display(
        "HTML", f'<img src=agentsh-missing.png onerror="{inline(tag)}">'
    ),
    "markdown": lambda tag: display(
        "Markdown", f'**markdown** <img src=agentsh-missing.png onerror="{inline(tag)}">'
    ),
    "svg": lambda tag: display("SVG", svg(tag)),
    # JupyterLab gives a link without a target target=_blank rel=noopener,
    # where a javascript: URL does not run; one that names _self keeps it.
    "link": lambda tag: display(
        "HTML", f'<a href="javascript:{inline(tag)}" target=_self>click-{tag}</a>'
    ),
}
# carrier -> the type its refusal names in the audit
OWN_MIME = {"javascript": "application/javascript", "script": "text/html",
            "onerror": "text/html", "markdown": "text/markdown", "svg": "image/svg+xml",
            "link": "text/html"}  # fmt: skip
# The carriers JupyterLab runs script from (the control requires them). An
# SVG is shown through an <img>, where its script never runs; the sandboxed
# run checks it all the same, for other frontends.
RUNS_IN_LAB = {"javascript", "script", "onerror", "markdown", "link"}
BENIGN = (
    "from IPython.display import HTML, display\n"
    "display(HTML('<table><tr><th>a</th></tr><tr><td>1</td></tr></table>'))\n"
    "print('benign output, still shown')"
)


def notebook(kernel: str, prefix: str) -> Any:
    """The attacking cells (tags ``PREFIX-CARRIER``), then the benign one."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(make(f"{prefix}-{c}")) for c, make in CARRIERS.items()]
    nb.cells.append(nbformat.v4.new_code_cell(BENIGN))
    return nb


# -- the server ---------------------------------------------------------------------


@dataclass
class Lab:
    server: Server
    area: SkArea

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def get(self, path: str) -> Any:
        # GET /api/kernels answers 500 while a kernel is being started (its
        # last_activity is not set yet, a jupyter_server race): ask again.
        deadline = time.monotonic() + 10
        while True:
            status, body = self.server.api("GET", path)
            if status != 500 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200, (path, status, body)
        return body


def _settings(area: SkArea) -> None:
    """User settings that keep JupyterLab quiet: no news, no update check
    (no request leaves the machine, no toast covers the screenshot)."""
    rel = "jupyter-config/lab/user-settings/@jupyterlab/apputils-extension"
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        area.mkdir("/".join(parts[:i]))  # owned by the user: Lab writes here too
    area.write(
        f"{rel}/notification.jupyterlab-settings",
        json.dumps({"fetchNews": "false", "checkForUpdates": False}),
    )


def start_lab(
    area: SkArea, *, python: str = sys.executable, env: dict[str, str] | None = None
) -> Server:
    """JupyterLab as the area's user, from ``python``'s environment; ``env``
    replaces the test's kernel environment (below) when given."""
    secret = "agentsh-test-token-" + uuid.uuid4().hex
    runtime = area.root / "runtime"
    log = area.root / "jupyterlab.log"
    argv = [
        python,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        f"--IdentityProvider.token={secret}",
        "--no-browser",
        f"--ServerApp.root_dir={area.ws}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI listing
        # window.jupyterapp: the test runs all cells and waits for the kernel
        # through Lab's own commands and models, not by clicking menus.
        "--LabApp.expose_app_in_browser=True",
    ]
    if area.user.uid == 0:
        argv.append("--allow-root")
    # The kernel's environment (HOME, the Jupyter directories, the marker by
    # which leftovers are found) and a shell that uid 65534 can run in a
    # terminal (its login shell is nologin). JUPYTER_PATH: the test's
    # kernelspec first. JUPYTER_DATA_DIR is not enough as root: in a venv its
    # user owns, jupyter_core prefers the venv's share/jupyter, where the
    # shipped "agentsh" kernelspec (no --policy, --audit) would win.
    if env is None:
        specs = area.root / "jupyter-data"
        env = sk_env(area, SHELL="/bin/sh", JUPYTER_PATH=str(specs))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            area.user.cmd(argv),
            cwd=area.ws,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    info = runtime / f"jpserver-{proc.pid}.json"  # setpriv execs: the pid is the server's
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"jupyter lab did not start (exit {proc.poll()}):\n"
                + log.read_text(errors="replace")[-3000:]
            )
        data = None
        if info.exists():
            with contextlib.suppress(ValueError):  # being written
                data = json.loads(info.read_text())
        if data is not None:
            srv = Server(proc, int(data["port"]), secret, info, area.ws, log)
            try:
                if srv.api("GET", "/api/status")[0] == 200:
                    return srv
            except OSError:
                pass
        time.sleep(0.1)


def clean(lab: Lab) -> None:
    """Undo what a run left in the server: sessions, kernels, terminals and
    pwned files, through the API."""
    srv = lab.server
    for s in lab.get("/api/sessions"):
        srv.api("DELETE", f"/api/sessions/{s['id']}")
    for k in lab.get("/api/kernels"):
        srv.api("DELETE", f"/api/kernels/{k['id']}")
    for t in lab.get("/api/terminals"):
        srv.api("DELETE", f"/api/terminals/{t['name']}")
    for name in pwned_files(lab):
        srv.api("DELETE", f"/api/contents/{name}")


def shut_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Stop the server and its kernels, fail if any process of it is left
    (killed by pid), keep its log, remove the scratch area."""
    server, area = lab.server, lab.area
    try:
        clean(lab)
    finally:
        _stop(server.proc)
    left = area_processes(area, exclude=[server.proc.pid])
    for p in left:  # only processes of this server (its marker), by pid
        os.kill(p.pid, 9)
    # The server's log outlives the scratch area, for a failure's reader.
    shutil.copy(server.log, tmp_path_factory.mktemp(f"lab-{area.user.name}") / "jupyterlab.log")
    area.cleanup()
    assert not left, f"processes left after the server stopped: {[p.argv for p in left]}"


@pytest.fixture(scope="module", params=["root", "nobody"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_kernel_module()
    user = make_user(request.param)
    area = sandboxed_area(user)
    # --display full: the audit under a cell lists its events, rules
    # included (the default, summary, shows only the counts).
    write_kernelspec(
        area, name=SANDBOXED, policy=area.policy, audit=area.audit, extra=("--display", "full")
    )
    _settings(area)
    server = start_lab(area)
    lab = Lab(server, area)
    try:
        # The server has the test's sandboxed kernelspec and the control's.
        specs = lab.get("/api/kernelspecs")["kernelspecs"]
        assert SANDBOXED in specs and PLAIN in specs, sorted(specs)
        argv = specs[SANDBOXED]["spec"]["argv"]
        assert argv[1:3] == ["-m", "agentsh_ipy.kernel"] and str(area.audit) in argv, argv
        yield lab
    finally:
        shut_lab(lab, tmp_path_factory)


# -- one run of the notebook in the browser -----------------------------------------


@dataclass
class Effects:
    files: list[str]  # pwned-* in the server's root
    kernels: list[dict[str, Any]]  # kernels other than the notebook's own
    terminals: list[dict[str, Any]]

    def harm(self) -> list[str]:
        return (
            [f"file {f}" for f in self.files]
            + [f"kernel {k['name']} {k['id']}" for k in self.kernels]
            + [f"terminal {t['name']}" for t in self.terminals]
        )


@dataclass
class Run:
    kernel: str  # the notebook's kernelspec
    prefix: str
    own: str  # the notebook's kernel id
    effects: Effects
    console: list[str]
    outputs: list[str]  # each cell's output area, as text
    benign_table: str  # the benign table's visible text ("" when not visible)
    benign_line: str
    blocked: list[str]  # requests aborted: not to 127.0.0.1
    errors: list[str]  # page errors, for the failure messages
    api: list[str]  # the payloads' requests as the browser saw them
    screenshot: Path
    seconds: dict[str, float] = field(default_factory=dict)
    live: list[str] = field(default_factory=list)  # what could still run script

    def tag(self, carrier: str) -> str:
        return f"{self.prefix}-{carrier}"

    def executed(self) -> set[str]:
        """Carriers whose payload ran in the browser (its marker was logged)."""
        return {c for c in CARRIERS if f"{MARKER} {self.tag(c)}" in self.console}

    def reached(self) -> set[str]:
        """Carriers whose payload wrote its file through the API."""
        return {c for c in CARRIERS if f"pwned-{self.tag(c)}.txt" in self.effects.files}

    def describe(self) -> str:
        return (
            f"payloads run (console): {sorted(self.executed())}\n"
            f"files written through the API by: {sorted(self.reached())}\n"
            f"kernels started: {[k['name'] for k in self.effects.kernels]}\n"
            f"terminals started: {len(self.effects.terminals)}\n"
            f"blocked requests: {self.blocked}\npage errors: {self.errors}\n"
            "the payloads' requests:\n  " + "\n  ".join(self.api)
        )


def pwned_files(lab: Lab) -> list[str]:
    listing = lab.get("/api/contents")["content"]
    return sorted(i["name"] for i in listing if i["name"].startswith("pwned-"))


def effects(lab: Lab, own: str) -> Effects:
    kernels = [k for k in lab.get("/api/kernels") if k["id"] != own]
    return Effects(pwned_files(lab), kernels, lab.get("/api/terminals"))


def _loopback_only(route: Route, blocked: list[str]) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        blocked.append(route.request.url)
        route.abort()


def _payload_request(api: list[str], request: Request, outcome: str) -> None:
    path = urlsplit(request.url).path
    if path.startswith("/api/contents/pwned-") or (
        request.method == "POST" and path in ("/api/kernels", "/api/terminals")
    ):
        api.append(f"{request.method} {path} {outcome}")


# window.jupyterapp (expose_app_in_browser): the notebook NAME is the current
# widget and its kernel is connected and idle.
KERNEL_READY = """name => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.context || w.context.path !== name || !w.sessionContext) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
# Every code cell has its execution count (its reply came) and the kernel is
# idle again; the supervisor holds a cell's idle until its audit is out.
ALL_RAN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session.kernel;
  return k.status === 'idle' && w.content.widgets.every(
    c => c.model.type !== 'code' || c.model.executionCount !== null);
}"""
OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => {
  const o = c.node.querySelector('.jp-OutputArea');
  return o ? o.textContent : '';
})"""
# What in the outputs could still run script: script-like elements, event
# handler attributes, javascript: URLs.
LIVE = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output *')).filter(e =>
  ['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED'].includes(e.tagName.toUpperCase()) ||
  Array.from(e.attributes).some(a => a.name.toLowerCase().startsWith('on') ||
    /^\\s*javascript:/i.test(a.value))
).map(e => e.outerHTML.slice(0, 120))"""
SCROLL_HEIGHT = """() => {
  const o = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  if (o) o.scrollTop = 0;
  return o ? o.scrollHeight : 0;
}"""


def run_notebook(
    lab: Lab,
    browser: Browser,
    kernel: str,
    shots: Path,
    *,
    done: Callable[[Run, bool], bool],
    wait: float,
) -> Run:
    """Open a fresh notebook for ``kernel`` in a new browser context and run
    all its cells; poll the server until ``done(run, False)`` or for ``wait``
    seconds; click the link; poll until ``done(run, True)`` or for ``wait``
    seconds. Closes the context (no payload can run after)."""
    prefix = f"{kernel}-{uuid.uuid4().hex[:6]}"
    name = f"outputs-{prefix}.ipynb"
    lab.area.write(f"ws/{name}", nbformat.writes(notebook(kernel, prefix)))
    times: dict[str, float] = {}
    t0 = time.monotonic()
    blocked: list[str] = []
    console: list[str] = []
    errors: list[str] = []
    api: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", lambda route: _loopback_only(route, blocked))
        # The console of every page of the context: a javascript: link may
        # open one of its own.
        context.on("console", lambda msg: console.append(msg.text))
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        context.on("response", lambda r: _payload_request(api, r.request, str(r.status)))
        context.on("requestfailed", lambda r: _payload_request(api, r, f"failed {r.failure}"))
        # ?reset: no workspace restored (never the control's notebook again).
        page.goto(lab.url(f"/lab/tree/{name}?reset&token={lab.server.token}"))
        page.wait_for_function(KERNEL_READY, arg=name, timeout=120_000, polling=200)
        times["kernel ready"] = time.monotonic() - t0
        page.evaluate(RUN_ALL)
        page.wait_for_function(ALL_RAN, timeout=120_000, polling=200)
        times["cells ran"] = time.monotonic() - t0
        sessions = [s for s in lab.get("/api/sessions") if s["path"] == name]
        assert len(sessions) == 1, lab.get("/api/sessions")
        own = sessions[0]["kernel"]["id"]
        assert sessions[0]["kernel"]["name"] == kernel, sessions

        def current() -> Run:
            return Run(kernel, prefix, own, effects(lab, own), list(console), [], "", "",
                       blocked, errors, list(api), shots / f"{name}.png")  # fmt: skip

        def poll(clicked: bool) -> Run:
            deadline = time.monotonic() + wait
            run = current()
            while not done(run, clicked) and time.monotonic() < deadline:
                # Not time.sleep: the route handler above runs (and lets the
                # page's requests go on) only while Playwright has the thread.
                page.wait_for_timeout(250)
                run = current()
            return run

        poll(False)
        times["before the click"] = time.monotonic() - t0
        # The link, if it is still one, clicked as a reader would; not before:
        # a javascript: URL stops the page's pending loads, the <img> whose
        # onerror is a payload among them.
        link = cell(page, "link").locator(f"a:has-text('click-{prefix}-link')")
        if link.count():
            link.click(timeout=10_000)
        run = poll(True)
        times["effects"] = time.monotonic() - t0
        run.outputs = page.evaluate(OUTPUTS)
        run.live = page.evaluate(LIVE)
        benign = cell(page, "benign")
        table = benign.locator(".jp-OutputArea-output table").first  # then the audit's
        if table.count():
            table.scroll_into_view_if_needed()
            run.benign_table = table.inner_text() if table.is_visible() else ""
        line = benign.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']"
        )
        if line.count() and line.is_visible():
            run.benign_line = line.inner_text()
        # The whole notebook in one picture: a viewport as tall as its content.
        height = page.evaluate(SCROLL_HEIGHT)
        page.set_viewport_size({"width": 1280, "height": min(max(900, height + 200), 4000)})
        page.evaluate(SCROLL_HEIGHT)
        page.wait_for_timeout(300)  # one layout after the resize
        page.screenshot(path=str(run.screenshot))
        run.console = list(console)
        run.api = list(api)
        run.seconds = times
    finally:
        context.close()
    # What reached the server, the requests of the last moment included.
    run.effects = effects(lab, run.own)
    print(f"{kernel} run: {times}; screenshot: {run.screenshot}")
    return run


def cell(page: Any, carrier: str) -> Locator:
    """The cell of ``carrier`` (``benign``: the last one) in the page."""
    index = len(CARRIERS) if carrier == "benign" else list(CARRIERS).index(carrier)
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


# -- the tests ----------------------------------------------------------------------


def by_then(carriers: set[str], clicked: bool) -> set[str]:
    """Those of ``carriers`` that can have run: the link's once it is clicked."""
    return carriers if clicked else carriers - {"link"}


def test_control_a_plain_kernel_lets_the_outputs_drive_the_server(
    lab: Lab, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert effects(lab, own="").harm() == []
    shots = tmp_path_factory.mktemp(f"control-{lab.area.user.name}")

    def everything(run: Run, clicked: bool) -> bool:
        wanted = by_then(RUNS_IN_LAB, clicked)
        n, e = len(wanted), run.effects
        return run.reached() >= wanted and len(e.kernels) >= n and len(e.terminals) >= n

    try:
        run = run_notebook(lab, browser, PLAIN, shots, done=everything, wait=30)
        # Each carrier Lab runs script from did everything: its marker, its
        # file (written as the server's user), a kernel and a terminal each.
        assert run.executed() >= RUNS_IN_LAB, run.describe()
        assert run.reached() >= RUNS_IN_LAB, run.describe()
        assert len(run.effects.kernels) >= len(RUNS_IN_LAB), run.describe()
        assert {k["name"] for k in run.effects.kernels} == {PLAIN}, run.describe()
        assert len(run.effects.terminals) >= len(RUNS_IN_LAB), run.describe()
        for carrier in RUNS_IN_LAB:
            path = lab.area.ws / f"pwned-{run.tag(carrier)}.txt"
            assert path.read_text() == run.tag(carrier)
            assert path.stat().st_uid == lab.area.user.uid
        # No audit without the sandbox, and the benign output shows.
        assert not any(RULE in o for o in run.outputs)
        assert run.benign_table.split() == ["a", "1"], run.benign_table
        assert run.benign_line.strip() == "benign output, still shown"
        # How long the harm took, beside SETTLE (printed, not asserted: a
        # loaded machine is slower, and timing is no test's verdict).
        print(f"control {lab.area.user.name}: {run.seconds}; the sandboxed run waits {SETTLE}s")
    finally:
        clean(lab)


@pytest.fixture(scope="module")
def sandboxed(lab: Lab, browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Run:
    # Nothing left from the control: what is found after the run is its own.
    assert effects(lab, own="").harm() == []
    shots = tmp_path_factory.mktemp(f"sandboxed-{lab.area.user.name}")
    try:
        return run_notebook(
            lab,
            browser,
            SANDBOXED,
            shots,
            done=lambda run, clicked: run.reached() >= by_then(set(CARRIERS), clicked),
            wait=SETTLE,
        )
    finally:
        clean(lab)


def test_no_payload_reaches_the_server(sandboxed: Run) -> None:
    assert sandboxed.effects.harm() == [], sandboxed.describe()


def test_no_payload_runs_in_the_browser(sandboxed: Run) -> None:
    markers = [m for m in sandboxed.console if m.startswith(MARKER)]
    assert markers == [], sandboxed.describe()
    # Nor could one later: nothing in the shown outputs runs script.
    assert sandboxed.live == [], sandboxed.live


def test_ordinary_output_still_shows(sandboxed: Run) -> None:
    assert sandboxed.benign_table.split() == ["a", "1"], sandboxed.benign_table
    assert sandboxed.benign_line.strip() == "benign output, still shown"


def test_the_audit_names_each_refusal(sandboxed: Run) -> None:
    assert len(sandboxed.outputs) == len(CARRIERS) + 1, sandboxed.outputs
    # Each in the cell's own audit (its output area), not in another cell's.
    outputs = dict(zip(CARRIERS, sandboxed.outputs[: len(CARRIERS)], strict=True))
    missing = [c for c, out in outputs.items() if RULE not in out]
    rows = {c: [r for r in out.splitlines() if RULE in r] for c, out in outputs.items()}
    assert missing == [], (
        f"no {RULE!r} in the audit of the cells of {missing}; the refusals each cell's"
        " audit shows:\n" + "\n".join(f"  {c}: {r}" for c, r in rows.items())
    )
    # ... and no cell's audit holds another's refusal (with Run All, the next
    # cell starts while this one's outputs are still arriving).
    foreign = {c: [r for r in found if OWN_MIME[c] not in r] for c, found in rows.items()}
    assert not any(foreign.values()), foreign
