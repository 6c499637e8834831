"""Integrity of zip archives (TorchScript model files and ``torch.save`` checkpoints are zip files):
every member is read and its CRC-32 compared with the one stored, so a damaged or truncated file is
refused with a message naming it instead of loading with silently changed numbers."""

from __future__ import annotations

import os
import zipfile


class DamagedFileError(ValueError):
    """A file that is not a readable zip archive, or one whose contents fail their checksums."""


def verify_zip(path, what: str) -> None:
    """Raise FileNotFoundError if ``path`` is missing, :class:`DamagedFileError` (naming ``path`` and
    ``what`` it should be) if it is a directory, not a zip archive, truncated, or a member's CRC-32
    does not match its contents."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise DamagedFileError(f"{path}: is a directory, not a {what}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:  # truncated: BadZipFile or EOFError
        raise DamagedFileError(f"{path}: not a {what} or a damaged one (not a readable zip archive: {err})") from None
    if bad is not None:
        raise DamagedFileError(f"{path}: damaged {what}: checksum mismatch in member {bad}")
