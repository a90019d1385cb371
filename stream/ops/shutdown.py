"""A watchdog for graceful stops that cannot finish (the broker went away under the worker)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

SHUTDOWN_TIMEOUT_EXIT = 3
_watchdog: list[threading.Timer] = []


def start_shutdown_watchdog(
    timeout_s: float, exit: Callable[[int], Any] = os._exit
) -> threading.Timer:
    """Exit the process if a graceful stop takes longer than ``timeout_s`` (started once)."""
    if _watchdog:
        return _watchdog[0]

    def give_up() -> None:
        logging.getLogger("crm_attribution.stream").error(
            "the graceful stop did not finish in %.0f s (is the Kafka broker reachable?); "
            "exiting with status %d",
            timeout_s,
            SHUTDOWN_TIMEOUT_EXIT,
        )
        exit(SHUTDOWN_TIMEOUT_EXIT)

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()
    _watchdog.append(timer)
    return timer
