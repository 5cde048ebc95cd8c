"""Progress bars and one-line errors for the entry points.

Runs log through Python's ``logging`` (under Hydra, to the console and the run's ``train.log``).
Progress bars are drawn only on a terminal: redirected to a file, a bar is a wall of carriage
returns, and the log already holds every epoch.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar, shown only when ``enabled`` and stderr is a terminal."""
    return tqdm(iterable, disable=not (enabled and sys.stderr.isatty()), **kwargs)


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
