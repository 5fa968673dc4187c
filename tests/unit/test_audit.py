"""Unit tests for agentsh_ipy.audit (pure: no files, no processes)."""

from __future__ import annotations

import ast
import io
import json
import re
import threading
from pathlib import Path

import pytest

from agentsh_ipy.audit import (
    AUDIT_MIME,
    EVENT_TYPES,
    FIELD_ORDER,
    AuditLog,
    Event,
    EventStore,
    LogRef,
    Summary,
    dumps_event,
    format_ts,
    is_denial,
    mimebundle,
    parse_jsonl,
    render_html,
    render_json,
    render_text,
    summarize,
    summary_line,
    target,
)

T0 = 1_795_978_800.123456  # 2026-11-29T19:00:00.123456Z


def fixed_clock() -> float:
    return T0


class CountingStream(io.StringIO):
    """A StringIO that records, at each flush, how many lines were written so far."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[int] = []

    def flush(self) -> None:
        super().flush()
        self.flushes.append(self.getvalue().count("\n"))


def expected_key_order(event: Event) -> list[str]:
    known = [k for k in FIELD_ORDER if k in event]
    extras = sorted(k for k in event if k not in FIELD_ORDER)
    return known + extras


# --- AuditLog -----------------------------------------------------------------


def test_seq_gap_free_and_in_file_order_under_threads() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s1", fixed_clock)
    threads_n, per_thread = 8, 500
    start = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            log.emit("file", op="read", pid=n, path=f"/t{n}/{i}", decision="allow")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    lines = stream.getvalue().splitlines()
    total = threads_n * per_thread
    assert len(lines) == total
    assert log.count == total
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    # Each thread's own events appear in the order it emitted them.
    for n in range(threads_n):
        paths = [e["path"] for e in events if e["pid"] == n]
        assert paths == [f"/t{n}/{i}" for i in range(per_thread)]


def test_line_format_key_order_and_none_dropping() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "sess-a", fixed_clock)
    log.emit(
        "exec",
        zeta="last",
        argv=["ls", "-l"],
        pid=42,
        alpha=1,
        decision="allow",
        rule=None,
        path="/bin/ls",
        ppid=None,
        op="exec",
    )
    (line,) = stream.getvalue().splitlines()
    assert stream.getvalue().endswith("\n")
    # compact separators, no spaces
    assert ", " not in line and '": ' not in line
    event = json.loads(line)
    assert list(event) == expected_key_order(event)
    assert list(event) == [
        "ts",
        "seq",
        "session",
        "cell",
        "type",
        "op",
        "pid",
        "path",
        "argv",
        "decision",
        "alpha",
        "zeta",
    ]
    assert event["cell"] is None  # present (null) outside notebooks
    assert "rule" not in event and "ppid" not in event
    assert event["ts"] == "2026-11-29T19:00:00.123456Z"
    assert event["session"] == "sess-a"
    assert event["type"] == "exec"


def test_ts_format() -> None:
    assert format_ts(0.0) == "1970-01-01T00:00:00.000000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", format_ts(T0))


def test_non_ascii_kept_and_line_breaking_chars_escaped() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock)
    nasty = "/tmp/é\u2028x\u2029y\x85z\nw\udcff"
    log.emit("file", op="read", path=nasty)
    text = stream.getvalue()
    assert "é" in text  # ensure_ascii=False
    # Only one line, whichever line-splitting rules a reader uses.
    assert len(text.splitlines()) == 1
    text.encode("utf-8")  # lone surrogate was escaped, so this must not raise
    assert parse_jsonl(text)[0]["path"] == nasty


def test_cell_tracking_and_override() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock, cell=1)
    log.emit("sandbox", op="start")
    log.set_cell("c2")
    log.emit("sandbox", op="x")
    log.set_cell(None)
    log.emit("sandbox", op="y")
    log.emit("sandbox", op="z", cell=7)  # explicit attribution
    cells = [e["cell"] for e in parse_jsonl(stream.getvalue())]
    assert cells == [1, "c2", None, 7]
    assert log.cell is None
    with pytest.raises(TypeError):
        log.set_cell(True)


def test_flush_called_per_emit() -> None:
    stream = CountingStream()
    log = AuditLog(stream, "s", fixed_clock)
    for i in range(5):
        log.emit("process_start", pid=100 + i)
    # flushed after every line, with that line already written
    assert stream.flushes == [1, 2, 3, 4, 5]
    log.close()
    assert not stream.closed  # the log does not own the stream
    with pytest.raises(ValueError, match="closed"):
        log.emit("process_start", pid=1)
    log.close()  # idempotent


def test_invalid_type_and_reserved_fields_raise() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock)
    with pytest.raises(ValueError, match="unknown audit event type"):
        log.emit("bogus", pid=1)
    for reserved in ("seq", "ts", "session"):
        with pytest.raises(ValueError, match="assigned by the audit log"):
            log.emit("file", **{reserved: 1})
    assert stream.getvalue() == ""
    assert log.count == 0
    with pytest.raises(ValueError):
        AuditLog(stream, "", fixed_clock)


def test_unserializable_value_does_not_use_a_seq() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock)
    log.emit("file", path="/a")
    with pytest.raises(TypeError):
        log.emit("file", path=object())
    with pytest.raises(ValueError):
        log.emit("file", path="/n", size=float("nan"))
    log.emit("file", path="/b")
    assert [e["seq"] for e in parse_jsonl(stream.getvalue())] == [1, 2]


def test_subscribers_get_the_written_event_detached_from_the_caller() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock)
    events: list[Event] = []
    lines: list[str] = []
    log.subscribe(events.append)
    log.subscribe_lines(lines.append)
    log.subscribe(events.append)  # one decoded dict, shared by event subscribers
    argv = ["echo", "hi", "\u2028", "\udcff"]  # a line break and a lone surrogate
    log.emit("exec", argv=argv, pid=3)
    argv.append("mutated")
    assert events[0]["argv"] == ["echo", "hi", "\u2028", "\udcff"]
    assert events[0] is events[1]
    assert events[0] == parse_jsonl(stream.getvalue())[0]
    # The line is the one in the log, escaped the same way: one line, encodable.
    assert lines == stream.getvalue().splitlines()
    assert lines[0].encode() and json.loads(lines[0]) == events[0]


def test_subscribers_get_events_in_seq_order_and_unsubscribe() -> None:
    log = AuditLog(None, "s", fixed_clock)  # no stream: subscribers only
    got_a: list[int] = []
    got_b: list[int] = []
    unsub_a = log.subscribe(lambda e: got_a.append(e["seq"]))
    log.subscribe(lambda e: got_b.append(e["seq"]))

    def worker() -> None:
        for _ in range(200):
            log.emit("process_start", pid=1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got_a == list(range(1, 801))
    assert got_b == got_a

    unsub_a()
    unsub_a()  # idempotent
    log.emit("process_exit", pid=1, exit_code=0)
    assert got_a[-1] == 800
    assert got_b[-1] == 801


def test_subscriber_errors_do_not_starve_others_and_reentry_refused() -> None:
    log = AuditLog(io.StringIO(), "s", fixed_clock)
    seen: list[int] = []

    def bad(_event: Event) -> None:
        raise RuntimeError("boom")

    log.subscribe(bad)
    log.subscribe(lambda e: seen.append(e["seq"]))
    with pytest.raises(RuntimeError, match="boom"):
        log.emit("sandbox", op="start")
    assert seen == [1]  # the second subscriber still got it
    assert log.count == 1

    log2 = AuditLog(io.StringIO(), "s", fixed_clock)

    def reenter(_event: Event) -> None:
        log2.emit("sandbox", op="nested")

    log2.subscribe(reenter)
    with pytest.raises(RuntimeError, match="subscriber"):
        log2.emit("sandbox", op="outer")


# --- EventStore ---------------------------------------------------------------


def test_event_store_bounds_and_dropped_counts() -> None:
    store = EventStore(max_events_per_cell=3, max_cells=2)
    log = AuditLog(None, "s", fixed_clock, cell=1)
    log.subscribe(store.add)
    for _ in range(5):
        log.emit("file", op="read", path="/x")
    assert [e["seq"] for e in store.events(1)] == [1, 2, 3]
    assert store.dropped(1) == 2
    log.set_cell(2)
    log.emit("file", op="read", path="/y")
    assert store.cells() == [1, 2]
    log.set_cell(3)
    log.emit("file", op="read", path="/z")
    assert store.cells() == [2, 3]  # oldest evicted
    assert store.events(1) == []
    assert store.dropped(1) == 0
    assert store.evicted_cells == 1
    # events() returns a copy
    store.events(2).clear()
    assert len(store.events(2)) == 1
    # dropped counts reach the summary
    s = summarize(store.events(2), dropped=store.dropped(2) + 2)
    assert s.dropped == 2
    assert "2 events DROPPED" in summary_line(s)


def test_event_store_keeps_denials_past_the_bound() -> None:
    # A flood of allowed events must not push a denial out of the cell's audit.
    store = EventStore(max_events_per_cell=3)
    log = AuditLog(None, "s", fixed_clock, cell=1)
    log.subscribe(store.add)
    for _ in range(5):
        log.emit("file", op="read", path="/x", decision="allow")
    for i in range(4):
        log.emit("file", op="write", path=f"/etc/{i}", decision="deny", rule="r")
    kept = store.events(1)
    assert [e["seq"] for e in kept] == [1, 2, 3, 6, 7, 8]  # denials up to twice the bound
    assert store.dropped(1) == 2 + 1
    s = summarize(kept, dropped=store.dropped(1))
    assert s.denials == 3 and s.dropped == 3


def test_event_store_none_cell_and_validation() -> None:
    store = EventStore()
    store.add({"type": "sandbox", "seq": 1})  # no cell field -> None
    store.add({"type": "sandbox", "seq": 2, "cell": None})
    assert store.cells() == [None]
    assert len(store.events(None)) == 2
    store.clear(None)
    assert store.cells() == []
    with pytest.raises(ValueError):
        EventStore(max_events_per_cell=0)
    with pytest.raises(ValueError):
        EventStore(max_cells=0)


# --- parse_jsonl --------------------------------------------------------------


def test_parse_jsonl_roundtrip_and_errors_name_the_line() -> None:
    stream = io.StringIO()
    log = AuditLog(stream, "s", fixed_clock)
    log.emit("process_start", pid=1)
    log.emit("process_exit", pid=1, exit_code=0)
    assert [e["type"] for e in parse_jsonl(stream.getvalue())] == ["process_start", "process_exit"]
    assert parse_jsonl("") == []

    good = '{"seq":1}\n{"seq":2}\n'
    with pytest.raises(ValueError, match=r"line 3\b"):
        parse_jsonl(good + '{"seq":3\n')
    with pytest.raises(ValueError, match=r"line 2: expected a JSON object"):
        parse_jsonl('{"seq":1}\n[1,2]\n')
    with pytest.raises(ValueError, match=r"line 2: empty"):
        parse_jsonl('{"seq":1}\n\n{"seq":3}\n')
    with pytest.raises(ValueError, match=r"line 1: .*duplicate key 'decision'"):
        parse_jsonl('{"decision":"deny","decision":"allow"}\n')
    with pytest.raises(ValueError, match=r"line 1: .*NaN"):
        parse_jsonl('{"x":NaN}\n')


# --- summarize / target ---------------------------------------------------------

CRAFTED: list[Event] = [
    {"seq": 1, "type": "process_start", "pid": 10, "argv": ["bash", "-c", "x"]},
    {"seq": 2, "type": "process_start", "pid": 11},
    {"seq": 3, "type": "exec", "pid": 11, "argv": ["cat", "a b"], "decision": "allow"},
    {"seq": 4, "type": "exec", "pid": 11, "argv": ["curl"], "decision": "deny", "rule": "no-curl"},
    {"seq": 5, "type": "file", "op": "read", "path": "/etc/hosts", "decision": "allow"},
    {"seq": 6, "type": "file", "op": "read", "path": "/etc/passwd", "decision": "audit"},
    {"seq": 7, "type": "file", "op": "read", "path": "/root/.ssh/id_rsa", "decision": "deny"},
    {"seq": 8, "type": "file", "op": "write", "path": "/tmp/out", "decision": "allow"},
    {"seq": 9, "type": "file", "op": "delete", "path": "/tmp/old", "decision": "audit"},
    {
        "seq": 10,
        "type": "net",
        "op": "connect",
        "addr": "10.0.0.1",
        "port": 80,
        "decision": "allow",
    },
    {"seq": 11, "type": "net", "op": "connect", "addr": "::1", "port": 22, "decision": "deny"},
    {"seq": 12, "type": "unix", "op": "connect", "path": "/run/x.sock", "decision": "allow"},
    {"seq": 13, "type": "net", "op": "bind", "addr": "0.0.0.0", "port": 8, "decision": "allow"},
    {"seq": 14, "type": "syscall_blocked", "syscall": "ptrace", "pid": 11},
    {
        "seq": 15,
        "type": "file",
        "op": "write",
        "path": "/home/u/.bashrc",
        "decision": "approve",
        "approval": "granted",
    },
    {
        "seq": 16,
        "type": "net",
        "op": "connect",
        "addr": "1.2.3.4",
        "port": 443,
        "decision": "approve",
        "approval": "timeout",
    },
    {"seq": 17, "type": "process_exit", "pid": 11, "exit_code": 3},
    {"seq": 18, "type": "process_exit", "pid": 10, "signal": 9},
    {"seq": 19, "type": "signal", "op": "kill", "pid": 10, "signal": 15, "decision": "deny"},
]


def test_summarize_counts() -> None:
    assert summarize(CRAFTED, dropped=4) == Summary(
        processes=2,
        execs=1,  # the denied exec is a denial, not an exec
        files_read=2,  # allow + audit; the denied read is not counted
        files_written=3,  # write, delete, approved write
        # connects to an address, denied ones included; unix sockets and bind are not
        connections=3,
        connections_denied=2,
        # deny decisions (seq 4, 7, 11, 19) + syscall_blocked + the timed-out approval
        denials=6,
        approvals=2,
        dropped=4,
        events=len(CRAFTED),
    )
    assert summarize([]) == Summary()


def test_summarize_counts_distinct_files_and_programs_not_path_probes() -> None:
    # One `sleep` found on the 4th PATH entry: four exec events, one program.
    probes = [
        {"seq": i, "type": "exec", "pid": 7, "path": f"{d}/sleep", "argv": ["sleep", "1"],
         "decision": "allow"}
        for i, d in enumerate(["/nope", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"], 1)
    ]  # fmt: skip
    reads = [{"seq": 10 + i, "type": "file", "op": "read", "pid": 7, "decision": "allow",
              "path": "/usr/lib/locale/C.utf8/LC_CTYPE"} for i in range(5)]  # fmt: skip
    again = {"seq": 20, "type": "exec", "pid": 8, "argv": ["sleep", "1"], "decision": "allow"}
    s = summarize([*probes, *reads, again])
    assert (s.execs, s.files_read) == (2, 1)


def test_summary_line_format() -> None:
    s = Summary(processes=3, execs=3, files_read=14, files_written=1, connections=0, denials=2)
    assert summary_line(s) == (
        "agentsh: 2 DENIED · 3 programs started · 14 files read · 1 written · 0 connections"
    )
    one = Summary(processes=1, execs=1, files_read=1, connections=2, connections_denied=2,
                  approvals=1)  # fmt: skip
    assert summary_line(one) == (
        "agentsh: nothing denied · 1 program started · 1 file read · 0 written"
        " · 2 connections (2 denied) · 1 approval"
    )
    forks = Summary(processes=500, execs=0, denials=1)
    assert "500 processes · 0 programs started" in summary_line(forks)


def test_is_denial_and_target() -> None:
    by_seq = {e["seq"]: e for e in CRAFTED}
    assert [seq for seq, e in by_seq.items() if is_denial(e)] == [4, 7, 11, 14, 16, 19]
    assert target(by_seq[3]) == "cat 'a b'"
    assert target(by_seq[5]) == "/etc/hosts"
    assert target(by_seq[10]) == "10.0.0.1:80"
    assert target(by_seq[11]) == "[::1]:22"
    assert target(by_seq[14]) == "ptrace"
    assert target(by_seq[17]) == "exit 3"
    assert target(by_seq[18]) == "signal 9"
    assert target({"type": "exec", "path": "/bin/ls", "argv": ["ls", "-a"]}) == "ls -a"
    assert target({"type": "sandbox"}) == ""


# --- renderers ------------------------------------------------------------------


def test_render_text_denials_first_then_folded_then_full() -> None:
    text = render_text(CRAFTED, dropped=0, cell=5, log=LogRef("/var/log/a.jsonl", "c-5"))
    lines = text.splitlines()
    assert lines[0] == summary_line(summarize(CRAFTED))
    # every denial, in order, with its rule, right under the summary
    denied = [ln for ln in lines if ln.startswith("  ! ")]
    assert lines[1 : 1 + len(denied)] == denied and len(denied) == 6
    assert "exec curl — [no-curl]" in denied[0] and "read /root/.ssh/id_rsa" in denied[1]
    assert "approval: timeout" in next(d for d in denied if "1.2.3.4:443" in d)
    flagged = [ln for ln in lines if ln.startswith("  ~ ")]
    assert [f.split(" — ")[0] for f in flagged] == [
        "  ~ read /etc/passwd", "  ~ delete /tmp/old", "  ~ write /home/u/.bashrc",
    ]  # fmt: skip
    assert any(ln.startswith("allowed: 1 program started") for ln in lines)
    assert "cell 5 (id c-5): 19 events, seq 1-19; all of them: agentsh-ipy audit " \
        "/var/log/a.jsonl --cell 5" in text  # fmt: skip
    # the full table comes last, its denied rows marked
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["seq", "type"])
    rows = lines[header + 1 :]
    assert len(rows) == len(CRAFTED)
    for event, row in zip(CRAFTED, rows, strict=True):
        assert row.startswith("! " if is_denial(event) else "  "), row
    assert "DENY (APPROVAL TIMEOUT)" in text and "BLOCKED" in text
    col = lines[header].index("decision")
    assert rows[4][col:].startswith("allow") and rows[6][col:].startswith("DENY")
    assert not any(line != line.rstrip() for line in lines)
    # summary form: no full table
    short = render_text(CRAFTED, detail=False)
    assert short.splitlines()[: len(denied) + 1] == lines[: len(denied) + 1]
    assert "seq  type" not in short


def test_repeated_denials_are_grouped_and_a_hidden_dns_denial_shows() -> None:
    curl = {"type": "exec", "pid": 40, "argv": ["curl", "https://example.org"],
            "decision": "allow", "seq": 1}  # fmt: skip
    dns = [{"seq": 2 + i, "type": "net", "op": "connect", "pid": 40, "addr": "10.0.0.2",
            "port": 53, "decision": "deny", "rule": "default:network"}
           for i in range(3)]  # fmt: skip
    reads = [{"seq": 10 + i, "type": "file", "op": "read", "pid": 40, "decision": "allow",
              "path": f"/usr/lib/x/{i}.so"} for i in range(30)]  # fmt: skip
    text = render_text([curl, *dns, *reads], detail=False)
    lines = text.splitlines()
    assert lines[0].startswith("agentsh: 3 DENIED") and "3 connections (3 denied)" in lines[0]
    assert lines[1].startswith("  ! 3\u00d7 connect 10.0.0.2:53 — [default:network] no rule")
    assert "could not resolve host" in lines[1] and lines[1].endswith("curl (pid 40)")
    assert "read      30 files: /usr/lib/x/ (30)" in text
    page = render_html([curl, *dns, *reads], detail=False)
    first = page.split("<details>")[0]  # before anything folded
    assert "3\u00d7 connect" in first and "could not resolve host" in first


def test_render_text_neutralizes_control_chars_and_truncates() -> None:
    evil = "/tmp/a\n! 9 file read /x allow\x1b[2K\u202egpj.exe"
    long = "/data/" + "x" * 200
    events = [
        {"seq": 1, "type": "file", "op": "read", "path": evil, "decision": "deny"},
        {"seq": 2, "type": "file", "op": "read", "path": long, "decision": "allow"},
    ]
    text = render_text(events)
    lines = text.splitlines()
    assert len([ln for ln in lines if ln.startswith("! ")]) == 1  # no injected row
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in text and "\\u202e" in text and "\\x0a" in text
    long_row = lines[-1]
    shown = next(part for part in long_row.split() if part.startswith("/data/"))
    assert shown.endswith("…") and len(shown) == 60


def test_render_html_plain_left_aligned_and_escaped() -> None:
    long = "/home/u/project/" + "d" * 150 + "/secret-name.txt"
    events = [
        *CRAFTED,
        {"seq": 20, "type": "file", "op": "read", "path": "/tmp/<b>x</b>", "decision": "deny"},
        {"seq": 21, "type": "file", "op": "read", "path": '/tmp/"><script>alert(1)</script>'},
        {"seq": 22, "type": "file", "op": "write", "path": long, "decision": "deny"},
    ]
    out = render_html(events, dropped=1)
    low = out.lower()
    assert "<script" not in low and "<style" not in low and "class=" not in low
    # the only inline styles: alignment, margins and wrapping
    styles = set(re.findall(r'style="([^"]*)"', out))
    allowed = {"margin-left:0;margin-right:auto", "text-align:left;vertical-align:top",
               "overflow-wrap:anywhere"}  # fmt: skip
    assert styles <= allowed, styles
    assert '<td align="left" style="text-align:left;vertical-align:top" valign="top">' in out
    assert "<td>" not in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out
    assert out.startswith("<p><strong>agentsh:</strong> <strong>8 DENIED</strong>")
    assert "<strong>1 event DROPPED" in out
    # denials before the folded allowed operations, the full list folded last
    first, folded = out.split("<details>", 1)
    assert "<strong>DENIED</strong>" in first and "id_rsa" in first and "/etc/hosts" not in first
    assert "/etc/" in folded and "<summary>every event (22)</summary>" in folded
    # a long target: elided in the middle, its start and its file name kept,
    # the whole value in the title
    [code] = [c for c in re.findall(r"<code[^>]*>[^<]*</code>", first) if "secret-name" in c]
    assert f'title="{long}"' in code and ">/home/u/project/d" in code and "…" in code
    # summary form: nothing but the one line for no events
    assert render_html([], detail=False) == (
        "<p><strong>agentsh:</strong> nothing denied · 0 programs started · 0 files read"
        " · 0 written · 0 connections</p>"
    )
    assert "every event" not in render_html(events, detail=False)


def test_render_json_and_mimebundle() -> None:
    log = LogRef("/l.jsonl", "id-5")
    bundle = mimebundle(CRAFTED, cell=5, dropped=2, log=log)
    assert set(bundle) == {"text/plain", "text/html", AUDIT_MIME}
    data = bundle[AUDIT_MIME]
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == 2
    assert data["cell"] == 5
    assert data["summary"]["denials"] == 6
    assert data["summary"]["dropped"] == 2
    assert data["events_kept"] == "all" and data["events"] == CRAFTED
    assert data["events"][0] is not CRAFTED[0]  # copies, not the caller's dicts
    assert data["log"] == {"path": "/l.jsonl", "cell_id": "id-5", "first_seq": 1,
                           "last_seq": 19, "events": 19}  # fmt: skip
    assert [f["denied"] for f in data["findings"]].count(True) == 6
    assert bundle["text/plain"] == render_text(CRAFTED, dropped=2, cell=5, log=log)
    assert bundle["text/html"] == render_html(CRAFTED, dropped=2, cell=5, log=log)
    # the summary form keeps the denied and flagged events only
    small = render_json(CRAFTED, cell=5, detail=False)
    assert small["events_kept"] == "denied and flagged"
    assert [e["seq"] for e in small["events"]] == [4, 6, 7, 9, 11, 14, 15, 16, 19]
    assert render_json([], cell=None)["summary"] == {
        "processes": 0,
        "execs": 0,
        "files_read": 0,
        "files_written": 0,
        "connections": 0,
        "connections_denied": 0,
        "denials": 0,
        "approvals": 0,
        "dropped": 0,
        "events": 0,
    }


def test_end_to_end_log_store_render() -> None:
    stream = io.StringIO()
    store = EventStore()
    log = AuditLog(stream, "s", fixed_clock, cell=9)
    log.subscribe(store.add)
    log.emit("process_start", pid=5, ppid=1, argv=["sh"])
    log.emit("file", op="read", pid=5, path="/etc/shadow", decision="deny", rule="secrets")
    log.close()
    assert store.events(9) == parse_jsonl(stream.getvalue())
    text = render_text(store.events(9), dropped=store.dropped(9))
    assert "1 DENIED" in text and "secrets" in text


def test_dumps_event_matches_log_format() -> None:
    line = dumps_event({"type": "file", "seq": 1, "zz": 1, "ts": "t", "aa": [1]})
    assert line == '{"ts":"t","seq":1,"type":"file","aa":[1],"zz":1}'
    assert set(EVENT_TYPES) >= {"file", "net", "exec"}


# --- layer rule -------------------------------------------------------------------

_FORBIDDEN_MODULES = {"os", "ctypes", "subprocess", "socket", "IPython", "io", "pathlib"}


def test_audit_package_is_pure() -> None:
    import agentsh_ipy.audit as audit

    package = Path(audit.__file__).parent
    for source in sorted(package.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                assert name.split(".")[0] not in _FORBIDDEN_MODULES, f"{source.name}: {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{source.name} calls open()"
