"""agentsh-ipy: sandboxed execution for Jupyter and IPython.

The package imports on any platform; enforcement needs Linux (see
``agentsh-ipy detect``). Importing it is cheap: the IPython extension and
the supervisor load their heavy parts lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
