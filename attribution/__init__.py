"""crm-attribution's domain library, and its notebook API.

``import attribution`` then ``attribution.attribute(data, ...)`` and
``attribution.report(data, ...)`` (see :mod:`attribution.notebook`). They load on first use,
so importing the library (as the command line and the stream do) stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["attribute", "report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from attribution import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'attribution' has no attribute {name!r}")
