"""agentsh-ipy: sandboxed execution for Jupyter and IPython.

The package imports on any platform; enforcement needs Linux (see
``agentsh-ipy detect``). Importing it is cheap: the IPython extension and
the supervisor load their heavy parts lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext agentsh_ipy``: see :mod:`agentsh_ipy.magics`."""
    from . import magics

    magics.load_ipython_extension(ip)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext agentsh_ipy``: restores everything the extension hooked."""
    from . import magics

    magics.unload_ipython_extension(ip)
