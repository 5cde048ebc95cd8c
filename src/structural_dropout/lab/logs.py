"""Progress bars and one-line errors for the entry points.

Runs log through Python's ``logging`` (under Hydra, to the console and the run's ``train.log``).
Progress bars are drawn only on a terminal: redirected to a file, a bar is a wall of carriage
returns, and the log already holds every epoch; a long loop without epochs (a sweep) logs its
progress there instead, at most once a minute (``progress_log``).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar, shown only when ``enabled`` and stderr is a terminal."""
    return tqdm(iterable, disable=not (enabled and sys.stderr.isatty()), **kwargs)


def progress_log(items: list, desc: str, logger: logging.Logger, every: float = 60.0) -> Iterator:
    """Yield ``items``, logging ``desc: i/n done (elapsed, ~left)`` at most every ``every``
    seconds and after the last: progress for a run whose bar is hidden (no terminal)."""
    start = last = time.monotonic()
    for i, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= every or i == len(items):
            left = (now - start) / i * (len(items) - i)
            logger.info("%s: %d/%d done (%.1f min, ~%.1f min left)", desc, i, len(items),
                        (now - start) / 60, left / 60)  # fmt: skip
            last = now


def one_line_errors(main: Callable) -> Callable:
    """Wrap an entry point so that an error prints as one line (``error: ...``) and exits with
    status 1; ``HYDRA_FULL_ERROR=1`` lets the full traceback through instead."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return main(*args, **kwargs)
        try:
            return main(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes one line
            message = " ".join(str(error).split()) or type(error).__name__
            _to_log_files(message, error)
            print(
                f"error: {message} (HYDRA_FULL_ERROR=1 for the traceback)",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(1)

    return wrapped


def _to_log_files(message: str, error: BaseException) -> None:
    """The error and its traceback into the run's log files (Hydra's ``train.log``), not to the
    console, which gets the one line: a log that stops must say why."""
    record = logging.LogRecord(
        "structural_dropout",
        logging.ERROR,
        __file__,
        0,
        message,
        None,
        (type(error), error, error.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
