"""What the sandboxed kernel's proxy lets the frontend render
(agentsh_ipy.kernel._outputs): nothing that runs code or loads a URL in the
Jupyter server's page, and every refusal named for the audit."""

from __future__ import annotations

from typing import Any

import pytest

from agentsh_ipy.kernel._outputs import (
    Refused,
    active_html,
    sanitize_html,
    screen_bundle,
    screen_iopub,
    screen_reply,
)

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5ErkJggg=="
)

# Each of these ran script in JupyterLab, or would in a browser, before the screen.
ACTIVE_HTML = [
    ("<script>alert(1)</script>", "<script>"),
    ('<img src=x onerror="alert(1)">', "onerror="),
    ('<a href="javascript:alert(1)">x</a>', "href=javascript:"),
    ('<a href=" jav&#x61;script:alert(1)">x</a>', "href=javascript:"),
    ('<a href="java\tscript:alert(1)">x</a>', "href=javascript:"),
    ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', "<iframe>"),
    ('<svg onload="alert(1)"><circle r=1></circle></svg>', "<svg>"),
    ("<math><mtext><script>alert(1)</script></mtext></math>", "<math>"),
    ('<form action="/api/kernels" method=post><button>go</button></form>', "<form>"),
    ('<object data="javascript:alert(1)"></object>', "<object>"),
    ('<base href="javascript:alert(1)//">', "<base>"),
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', "<meta>"),
    ('<details open ontoggle="alert(1)">x</details>', "ontoggle="),
    ('<img src="https://example.invalid/leak?secret=1">', "<img src=https://example.invalid"),
    ('<a href="data:text/html,<script>alert(1)</script>">x</a>', "href=data:"),
]


@pytest.mark.parametrize(("text", "named"), ACTIVE_HTML)
def test_active_html_is_removed_and_named(text: str, named: str) -> None:
    clean = sanitize_html(text).lower()
    for bad in ("<script", "onerror", "onload", "ontoggle", "javascript:", "<iframe", "srcdoc",
                "<svg", "<math", "<form", "<object", "<base", "<meta", "example.invalid",
                "data:text"):  # fmt: skip
        assert bad not in clean, (text, clean)
    assert any(found.startswith(named) for found in active_html(text)), active_html(text)


def test_ordinary_html_is_kept() -> None:
    table = (
        '<style scoped>.dataframe td {color: red}</style><table border="1" class="dataframe">'
        "<thead><tr><th>a</th></tr></thead><tbody><tr><td>1 &lt; 2</td></tr></tbody></table>"
        '<p>see <a href="https://example.org/docs">the docs</a></p>'
        f'<img src="data:image/png;base64,{PNG}" alt="dot" width="3">'
    )
    clean = sanitize_html(table)
    assert "<td>1 &lt; 2</td>" in clean and "<th>a</th>" in clean
    assert 'href="https://example.org/docs"' in clean
    assert f'src="data:image/png;base64,{PNG}"' in clean and 'alt="dot"' in clean
    assert "<style" not in clean and "color: red" not in clean and "class=" not in clean
    # presentation only: nothing the audit need name
    assert active_html(table) == []


def test_relative_urls_are_removed() -> None:
    # a GET to the Jupyter server with its cookies (/logout is one)
    clean = sanitize_html('<a href="/logout">x</a><img src="/files/secret.png">')
    assert "/logout" not in clean and "/files" not in clean


def test_bundle_keeps_inert_types_and_drops_the_rest() -> None:
    data = {
        "text/plain": "<IPython.core.display.Javascript object>",
        "application/javascript": "fetch('/api/kernels', {method: 'POST'})",
        "image/png": PNG,
        "application/json": {"a": [1, 2]},
        "image/svg+xml": "<svg onload=alert(1)></svg>",
        "application/vnd.jupyter.widget-view+json": {"model_id": "x"},
        "application/vnd.agentsh.audit+json": {"events": []},
        "text/vnd.weird": "x",
    }
    out, refused = screen_bundle(data, "display_data")
    assert set(out) == {"text/plain", "image/png", "application/json"}
    assert out["image/png"] == PNG and out["application/json"] == {"a": [1, 2]}
    dropped = {r.what for r in refused}
    assert dropped == set(data) - {"text/plain", "image/png", "application/json"}
    assert all(r.msg_type == "display_data" and r.reason for r in refused)
    js = next(r for r in refused if r.what == "application/javascript")
    assert "Jupyter server" in js.reason
    # the cell shows where something was held back
    assert out["text/plain"].startswith("<IPython.core.display.Javascript object>\n[agentsh: ")
    assert f"[agentsh: not shown: application/javascript: {js.reason}]" in out["text/plain"]


def test_markdown_is_shown_as_its_text() -> None:
    source = '# Title\n<img src=x onerror="alert(1)">'
    out, refused = screen_bundle(
        {"text/markdown": source, "text/plain": "<IPython.core.display.Markdown object>"},
        "display_data",
    )
    assert set(out) == {"text/plain"} and out["text/plain"].startswith(source + "\n[agentsh:")
    assert [r.what for r in refused] == ["text/markdown"]
    # a real text/plain (sympy's) is kept over the LaTeX source
    out, _ = screen_bundle({"text/latex": "$x^2$", "text/plain": " 2\nx "}, "execute_result")
    assert out["text/plain"].startswith(" 2\nx \n")


@pytest.mark.parametrize("value", ["not base64 <img src=x onerror=alert(1)>", {"a": 1}, ["iVBOR"]])
def test_image_data_must_be_base64_text(value: Any) -> None:
    out, refused = screen_bundle({"image/png": value}, "display_data")
    assert "image/png" not in out
    assert [(r.what, r.reason) for r in refused] == [("image/png", "not base64 image data")]


def test_html_refusal_names_what_was_removed() -> None:
    out, refused = screen_bundle(
        {"text/html": "<b>hi</b><script>x()</script><img src=x onerror=y()>"}, "execute_result"
    )
    assert out == {"text/html": "<b>hi</b><img>"}
    why = "removed <script>, <img src=x>, onerror="
    assert refused == [Refused("text/html", "execute_result", why)]
    assert refused[0].message == f"text/html in execute_result: {why}"


def test_not_a_bundle() -> None:
    out, refused = screen_bundle("<script>", "display_data")
    assert out == {} and refused[0].reason == "not a MIME bundle"


@pytest.mark.parametrize("msg_type", ["status", "stream", "execute_input", "error", "clear_output"])
def test_text_messages_pass_unchanged(msg_type: str) -> None:
    content = {"name": "stdout", "text": "<script>x()</script>"}  # shown as text
    out, refused = screen_iopub(msg_type, content)
    assert out is content and refused == []


@pytest.mark.parametrize(
    "msg_type", ["comm_open", "comm_msg", "comm_close", "debug_event", "made_up", ""]
)
def test_other_iopub_messages_are_dropped(msg_type: str) -> None:
    out, refused = screen_iopub(msg_type, {"data": {"state": {"value": "<img onerror=x>"}}})
    assert out is None
    assert len(refused) == 1 and refused[0].what == msg_type


def test_display_messages_are_screened() -> None:
    content = {
        "data": {"application/javascript": "x()", "text/plain": "t"},
        "metadata": {"image/png": {"width": 3}},
        "transient": {"display_id": "d1"},
    }
    out, refused = screen_iopub("update_display_data", content)
    assert out is not None
    assert out["data"]["text/plain"].startswith("t\n[agentsh:")
    assert out["metadata"] == {"image/png": {"width": 3}}
    assert out["transient"] == {"display_id": "d1"}
    assert [r.what for r in refused] == ["application/javascript"]


def test_the_audit_display_cannot_be_overwritten() -> None:
    content = {
        "data": {"text/plain": "0 denials"},
        "transient": {"display_id": "agentsh-audit-x-3"},
    }
    for msg_type in ("display_data", "update_display_data"):
        out, refused = screen_iopub(msg_type, content)
        assert out is None and refused[0].what == "display_id"


def test_kernel_info_has_no_debugger_and_only_web_help_links() -> None:
    content = {
        "status": "ok",
        "debugger": True,
        "help_links": [
            {"text": "Python", "url": "https://docs.python.org/3"},
            {"text": "click me", "url": " javascript:fetch('/api/terminals')"},
            "not a link",
        ],
    }
    out, refused = screen_reply("kernel_info_reply", content)
    assert out["debugger"] is False
    assert out["help_links"] == [{"text": "Python", "url": "https://docs.python.org/3"}]
    assert [r.what for r in refused] == ["help_links"]


def test_replies_that_carry_bundles_are_screened() -> None:
    out, refused = screen_reply(
        "inspect_reply", {"status": "ok", "found": True, "data": {"text/html": "<script>"}}
    )
    assert "<script" not in out["data"]["text/html"] and refused[0].msg_type == "inspect_reply"
    page = {"source": "page", "data": {"text/html": "<img src=x onerror=y()>", "text/plain": "p"}}
    content = {
        "status": "ok",
        "payload": [page, {"source": "set_next_input", "text": "x"}, {"source": "other"}, 3],
    }
    out, refused = screen_reply("execute_reply", content)
    assert out["payload"][0]["data"]["text/plain"] == "p"
    assert "onerror" not in out["payload"][0]["data"]["text/html"]
    assert out["payload"][1] == {"source": "set_next_input", "text": "x"}
    assert len(out["payload"]) == 2
    assert {r.what for r in refused} == {"text/html", "payload"}


def test_debug_reply_says_there_is_no_debugger() -> None:
    out, refused = screen_reply(
        "debug_reply", {"seq": 3, "request_seq": 2, "command": "evaluate", "body": {"x": 1}}
    )
    assert out["success"] is False and "body" not in out and out["request_seq"] == 2
    assert refused[0].what == "debug_reply"


def test_other_replies_pass_unchanged() -> None:
    content = {"status": "ok", "matches": ["<script>"]}
    out, refused = screen_reply("complete_reply", content)
    assert out is content and refused == []
