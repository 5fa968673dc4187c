"""What the sandboxed kernel may show in the frontend.

JupyterLab renders a kernel's outputs in the Jupyter server's own page, and
the outputs of a cell it executed are trusted: a script in them runs with the
server's origin, reads the ``_xsrf`` cookie and drives the REST API (starts an
unsandboxed kernel, opens a terminal, writes any file). An image the page
loads from an address in the output reaches the network from the browser, past
the sandbox's network policy. So the proxy passes the inner kernel's messages
on only in forms that cannot run code or load anything:

* output bundles keep the inert types (text, JSON, base64 raster images);
  ``text/html`` is sanitized (nh3: no scripts, event handlers, styles, frames,
  forms, SVG; links only http(s)/mailto; images only ``data:image/``); every
  other type is dropped: JavaScript, Markdown and LaTeX (raw HTML and
  ``javascript:`` links render), SVG, PDF, widget views and renderer
  extensions' types (they run code the kernel supplies);
* comm messages (widgets) and debugger traffic do not go out; the kernel says
  it has no debugger;
* iopub messages of types not listed here are dropped;
* help links in kernel_info must be http(s).

Each refusal is returned as a ``Refused`` for the cell's audit; what was
dropped from a bundle is named in its text/plain, so the cell shows where.
Pure: no OS calls. The supervisor's own audit display does not pass here.
"""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass
from typing import Any, Final

import nh3

INERT: Final = frozenset(
    [
        "text/plain",
        "application/json",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/bmp",
        "image/webp",
    ]
)
HTML: Final = "text/html"
BUNDLES: Final = frozenset({"display_data", "update_display_data", "execute_result"})
# Rendered as text by the frontend, or not rendered at all.
PLAIN_IOPUB: Final = frozenset(
    {"status", "stream", "execute_input", "error", "clear_output", "shutdown_reply"}
)
AUDIT_DISPLAY_PREFIX: Final = "agentsh-audit-"

_WHY: Final = {
    "application/javascript": "JavaScript runs in the page with the Jupyter server's access",
    "text/markdown": "Markdown renders raw HTML and javascript: links",
    "text/latex": "LaTeX is typeset by MathJax, which renders links",
    "image/svg+xml": "SVG can carry scripts",
    "application/vnd.jupyter.widget-view+json": "widgets render what the kernel supplies",
}
_WHY_OTHER: Final = "not an inert output type"
_BASE64: Final = re.compile(r"[A-Za-z0-9+/=\s]*")
# IPython's default repr, the only text/plain of Markdown(...) and Latex(...)
_OBJECT_REPR: Final = re.compile(r"<[\w.]+ object>")


@dataclass(frozen=True)
class Refused:
    """Something the frontend was not given: ``what`` (a MIME type, a
    message type), in which message, and why."""

    what: str
    msg_type: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.what} in {self.msg_type}: {self.reason}"


# -- HTML ---------------------------------------------------------------------

_ALLOWED_TAGS: Final = frozenset(nh3.ALLOWED_TAGS | {"tfoot"})


def _attribute(element: str, attribute: str, value: str) -> str | None:
    url = _scheme_text(value)
    if element == "img" and attribute == "src":
        return value if url.startswith("data:image/") else None  # never fetched
    if attribute == "href" and url.startswith("data:"):
        return None
    return value


def _scheme_text(value: str) -> str:
    # How a browser reads a URL's scheme: leading spaces and controls, and
    # tabs and newlines anywhere, do not count.
    return re.sub(r"[\t\n\r]", "", value).lstrip("\x00- ").lower()


def sanitize_html(text: str) -> str:
    """``text`` without anything that runs or loads: nh3's defaults (no
    script, style, event handler, frame, form or SVG; no class, id or style
    attribute), plus links only http(s)/mailto, no relative URL (a GET to
    the server with its cookies) and images only inline (``data:image/``)."""
    return nh3.clean(
        text,
        tags=set(_ALLOWED_TAGS),
        url_schemes={"http", "https", "mailto", "data"},
        url_relative="deny",
        attribute_filter=_attribute,
    )


_ACTIVE_TAGS: Final = frozenset(
    [
        "script",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "base",
        "link",
        "meta",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "svg",
        "math",
        "template",
        "portal",
    ]
)
_URL_ATTRIBUTES: Final = frozenset(
    [
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "poster",
        "background",
        "srcset",
        "ping",
        "lowsrc",
        "dynsrc",
        "codebase",
    ]
)
_SAFE_LINKS: Final = ("http:", "https:", "mailto:")


class _ActiveScan(html.parser.HTMLParser):
    """What in an HTML text would run code or load something: for the audit
    only (the sanitizer removes it whether or not this scan sees it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def _note(self, what: str) -> None:
        if what not in self.found:
            self.found.append(what)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE_TAGS:
            self._note(f"<{tag}>")
        for name, value in attrs:
            url = _scheme_text(value or "")
            if name.startswith("on") or name == "srcdoc":
                self._note(f"{name}=")
            elif name not in _URL_ATTRIBUTES or not url:
                continue
            elif tag == "img" and name == "src":
                if not url.startswith("data:image/"):
                    self._note(f"<img src={(value or '').strip()[:40]}>")
            elif not url.startswith(_SAFE_LINKS) and ":" in url.split("/", 1)[0]:
                self._note(f"{name}={url.split(':', 1)[0]}:")

    handle_startendtag = handle_starttag


def active_html(text: str) -> list[str]:
    """What the sanitizer will have removed that could run or load (at most
    a few, for the audit): ``<script>``, ``onerror=``, ``href=javascript:``."""
    scan = _ActiveScan()
    try:
        scan.feed(text)
        scan.close()
    except (AssertionError, ValueError):  # html.parser on malformed input
        scan.found.append("malformed HTML")
    return scan.found[:5]


# -- messages -----------------------------------------------------------------


def screen_bundle(data: Any, msg_type: str) -> tuple[dict[str, Any], list[Refused]]:
    """The inert part of a MIME bundle, and what was refused."""
    if not isinstance(data, dict):
        return {}, [Refused("data", msg_type, "not a MIME bundle")]
    out: dict[str, Any] = {}
    refused: list[Refused] = []
    dropped: list[Refused] = []
    for mime, value in data.items():
        mime = str(mime)
        if mime == HTML and isinstance(value, str):
            active = active_html(value)
            out[mime] = sanitize_html(value)
            if active:
                refused.append(Refused(mime, msg_type, "removed " + ", ".join(active)))
        elif mime in INERT and (mime != "text/plain" or isinstance(value, str)):
            if mime.startswith("image/") and not (
                isinstance(value, str) and _BASE64.fullmatch(value)
            ):
                dropped.append(Refused(mime, msg_type, "not base64 image data"))
            else:
                out[mime] = value
        else:
            dropped.append(Refused(mime, msg_type, _WHY.get(mime, _WHY_OTHER)))
    if dropped:
        plain = out.get("text/plain")
        source = data.get("text/markdown", data.get("text/latex"))
        if isinstance(source, str) and (plain is None or _OBJECT_REPR.fullmatch(plain.strip())):
            plain = source  # the text the cell meant to show, as text
        note = "\n".join(f"[agentsh: not shown: {r.what}: {r.reason}]" for r in dropped)
        out["text/plain"] = f"{plain}\n{note}" if plain else note
    return out, refused + dropped


def screen_iopub(
    msg_type: str, content: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[Refused]]:
    """What of an iopub message goes to the frontend (None: nothing)."""
    if msg_type in PLAIN_IOPUB:
        return content, []
    if msg_type not in BUNDLES:
        why = "widgets and other comm views run what the kernel supplies"
        if msg_type == "debug_event":
            why = "the sandboxed kernel has no debugger"
        elif not msg_type.startswith("comm_"):
            why = "not a message type the sandboxed kernel shows"
        return None, [Refused(msg_type, msg_type, why)]
    transient = content.get("transient")
    if isinstance(transient, dict) and str(transient.get("display_id", "")).startswith(
        AUDIT_DISPLAY_PREFIX
    ):
        return None, [Refused("display_id", msg_type, "the audit display is the supervisor's")]
    data, refused = screen_bundle(content.get("data"), msg_type)
    metadata = content.get("metadata")
    return {**content, "data": data, "metadata": metadata if isinstance(metadata, dict) else {}}, (
        refused
    )


def screen_reply(msg_type: str, content: dict[str, Any]) -> tuple[dict[str, Any], list[Refused]]:
    """What of a shell or control reply goes to the frontend. (Always a
    reply: the frontend waits for it.)"""
    refused: list[Refused] = []
    if msg_type == "debug_reply":
        # kernel_info says there is none, so a frontend should not ask
        why = "the sandboxed kernel has no debugger"
        return {"type": "response", "success": False, "message": why,
                **{k: content.get(k) for k in ("seq", "request_seq", "command")}}, [
            Refused(msg_type, msg_type, why)
        ]  # fmt: skip
    if msg_type == "kernel_info_reply":
        links = content.get("help_links")
        kept = [
            link
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict)
            and _scheme_text(str(link.get("url", ""))).startswith(("http:", "https:"))
        ]
        if isinstance(links, list) and len(kept) != len(links):
            refused.append(Refused("help_links", msg_type, "a help link that is not http(s)"))
        return {**content, "help_links": kept, "debugger": False}, refused
    if msg_type == "inspect_reply" and "data" in content:
        data, refused = screen_bundle(content["data"], msg_type)
        return {**content, "data": data}, refused
    if msg_type == "execute_reply" and isinstance(content.get("payload"), list):
        payload = []
        for item in content["payload"]:
            source = item.get("source") if isinstance(item, dict) else None
            if source == "page":
                data, more = screen_bundle(item.get("data"), msg_type)
                refused += more
                payload.append({**item, "data": data})
            elif source in ("set_next_input", "ask_exit", "edit_magic"):
                payload.append(item)
            else:
                refused.append(Refused("payload", msg_type, f"unknown payload {source!r}"))
        return {**content, "payload": payload}, refused
    return content, refused
