"""Domain names in network rules: validation and matching (pure).

A ``domains`` entry is an exact host name (``pypi.org``) or a wildcard
``*.suffix`` that matches every name below the suffix (``*.pythonhosted.org``
matches ``files.pythonhosted.org`` and ``a.b.pythonhosted.org``, not
``pythonhosted.org`` itself: list both to allow both). Names compare
case-insensitively, without a trailing dot. Only the proxy the supervisor
runs decides by name; a direct connect is decided by its address.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
MAX_NAME = 253


def normalize_name(name: str) -> str | None:
    """``name`` in the form rules compare (lower case, no trailing dot), or
    None when it is not a host name (empty, too long, a bad label, not
    ASCII, an IP address)."""
    text = name.strip().lower()
    if text.endswith("."):
        text = text[:-1]
    if not text or len(text) > MAX_NAME or not text.isascii():
        return None
    if not all(_LABEL.fullmatch(label) for label in text.split(".")):
        return None
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    return None


def parse_pattern(text: str) -> tuple[str | None, str]:
    """(the pattern as rules keep it, "") or (None, the reason it is bad).
    A wildcard is kept as ``.suffix`` (leading dot)."""
    raw = text.strip()
    if not raw:
        return None, "a domain must not be empty"
    wildcard = raw.startswith("*.")
    body = raw[2:] if wildcard else raw
    if "*" in body:
        return None, (
            f"bad wildcard '{text}': '*' may only be a whole first label, as in '*.example.com'"
        )
    try:
        ipaddress.ip_address(body.strip("[]"))
    except ValueError:
        pass
    else:
        return None, f"'{text}' is an address, not a name: use cidrs"
    name = normalize_name(body)
    if name is None:
        return None, (
            f"bad domain '{text}': expected a host name (letters, digits, '-' and '_' "
            f"in dot-separated labels of at most 63, {MAX_NAME} in all)"
        )
    if wildcard and "." not in name:
        # "*.com" would open a whole top-level domain.
        return None, f"bad wildcard '{text}': the suffix must have at least two labels"
    return ("." + name if wildcard else name), ""


def matches(patterns: tuple[str, ...], name: str) -> bool:
    """Does normalized ``name`` match one of the kept patterns?"""
    for p in patterns:
        if p.startswith("."):
            if name.endswith(p):
                return True
        elif name == p:
            return True
    return False
