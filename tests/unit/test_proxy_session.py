"""The proxy's own Jupyter message signing, checked against jupyter_client's
Session (what every frontend uses): what the supervisor writes must verify
and parse there, and the signatures must be the same."""

from __future__ import annotations

import json

import pytest
import zmq
from jupyter_client.session import Session as JupyterSession

from agentsh_ipy.kernel._proxy import DELIM, Session

KEY = b"5b2c0f9e-aa11-4f1e-9e3b-0a6f3d7c2b91"


def _pair() -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes], zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://proxy-session-test")
    b.connect("inproc://proxy-session-test")
    return ctx, a, b


def test_signatures_are_jupyter_clients() -> None:
    ours, theirs = Session(KEY, "hmac-sha256"), JupyterSession(key=KEY)
    frames = [b'{"msg_id":"1"}', b"{}", b"{}", b'{"code":"pass"}']
    assert ours.sign(frames) == theirs.sign(frames)
    sha512 = Session(KEY, "hmac-sha512")
    assert sha512.sign(frames) == JupyterSession(key=KEY, signature_scheme="hmac-sha512").sign(
        frames
    )
    assert sha512.sign(frames) != ours.sign(frames)


def test_a_message_we_send_verifies_and_parses_in_jupyter_client() -> None:
    ours, theirs = Session(KEY, "hmac-sha256"), JupyterSession(key=KEY)
    # The proxy has the request's header as the frontend sent it (JSON).
    parent = json.loads(theirs.pack(theirs.msg("execute_request", {"code": "1"})["header"]))
    # A file name that is not UTF-8 reaches the event as a lone surrogate.
    content = {"data": {"text/plain": "denied /w/\udcff"}, "metadata": {}, "transient": {}}
    ctx, a, b = _pair()
    try:
        first, second = ours.msg("display_data", content, parent), ours.msg("status", {}, parent)
        ours.send(a, first, [b"display_data"])
        frames = b.recv_multipart()
    finally:
        a.close()
        b.close()
        ctx.term()
    assert frames[0] == b"display_data" and frames[1] == DELIM
    assert all(f.isascii() for f in frames[3:])  # valid UTF-8 whatever the file names
    idents, rest = theirs.feed_identities(frames)
    msg = theirs.deserialize(rest)  # checks the signature; raises if it is wrong
    assert idents == [b"display_data"]
    assert msg["msg_type"] == "display_data"
    assert msg["content"] == content
    assert msg["parent_header"]["msg_id"] == parent["msg_id"]
    header = msg["header"]
    assert header["session"] == ours.session and header["version"] == "5.4"
    assert header["date"].tzinfo is not None  # parsed: ISO 8601 with a zone
    assert first["header"]["msg_id"] != second["header"]["msg_id"]


def test_a_forged_signature_is_refused_by_jupyter_client() -> None:
    ours, theirs = Session(b"another key", "hmac-sha256"), JupyterSession(key=KEY)
    msg = ours.msg("status", {"execution_state": "idle"}, {})
    frames = [
        json.dumps(msg[p]).encode() for p in ("header", "parent_header", "metadata", "content")
    ]
    with pytest.raises(ValueError, match="Invalid Signature"):
        theirs.deserialize([ours.sign(frames), *frames])


def test_no_key_means_no_signature_and_a_bad_scheme_is_refused() -> None:
    assert Session(b"", "hmac-sha256").sign([b"{}"] * 4) == b""
    with pytest.raises(ValueError, match="unsupported signature_scheme 'rot13'"):
        Session(KEY, "rot13")
    with pytest.raises(ValueError, match="unsupported signature_scheme 'hmac-nothing'"):
        Session(KEY, "hmac-nothing")
