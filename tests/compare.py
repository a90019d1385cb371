"""How the stream's answers are compared with the batch engine's, in every test that does it."""

from __future__ import annotations

import math
from typing import Any


def assert_same(stream: Any, batch: Any, path: str = "") -> None:
    """Same keys and list lengths; counts exactly equal; other numbers equal to 1e-9 relative
    (1e-9 near zero)."""
    if isinstance(batch, dict):
        assert isinstance(stream, dict), path
        assert sorted(stream) == sorted(batch), f"{path}: {sorted(stream)} != {sorted(batch)}"
        for key in batch:
            assert_same(stream[key], batch[key], f"{path}.{key}")
    elif isinstance(batch, list):
        assert isinstance(stream, list) and len(stream) == len(batch), f"{path}: {stream}"
        for index, (mine, theirs) in enumerate(zip(stream, batch, strict=True)):
            assert_same(mine, theirs, f"{path}[{index}]")
    elif isinstance(batch, int) and not isinstance(batch, bool):
        assert stream == batch, f"{path}: {stream} != {batch}"
    elif isinstance(batch, float):
        assert isinstance(stream, float | int), path
        assert math.isclose(stream, batch, rel_tol=1e-9, abs_tol=1e-9), (
            f"{path}: {stream} != {batch}"
        )
    else:
        assert stream == batch, f"{path or '(top)'}: {stream!r} != {batch!r}"
