"""Log setup: human lines by default, one JSON object per line by option."""

from __future__ import annotations

import json
import logging
import time
from typing import Any


class JsonFormatter(logging.Formatter):
    """Structured log lines for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object: time, level, logger, message (and the exception, if any)."""
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure(json_logs: bool, level: str) -> None:
    """Install the root handler."""
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python's admin client logs every connection at INFO; keep worker logs readable.
    logging.getLogger("kafka").setLevel(logging.WARNING)
