"""Downloads that fail with one clear error and leave nothing behind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

DATA_HINT = (
    "put the files there, or point data_dir= (or the STRUCTURAL_DROPOUT_DATA environment "
    "variable) at a folder that holds them"
)


def fetch(download: Callable[[], object], target: str | Path, what: str) -> None:
    """Run ``download()`` to fill ``target``. If it fails (offline, a bad checksum), the folders
    it created are removed and the error says where ``what`` was expected and how to point at
    it, instead of the downloader's traceback."""
    target = Path(target).expanduser()
    created = target
    while not created.parent.exists():  # the outermost folder the download would create
        created = created.parent
    existed = created.exists()
    try:
        download()
    except Exception as error:  # noqa: BLE001 - every failure of the download is reported alike
        if not existed and created.exists():
            shutil.rmtree(created, ignore_errors=True)
        reason = " ".join(str(error).split()) or type(error).__name__
        raise FileNotFoundError(
            f"{what} not found in {target} and the download failed ({reason}); {DATA_HINT}"
        ) from error
