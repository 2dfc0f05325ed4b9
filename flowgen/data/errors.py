"""The error raised when a dataset's files are missing and cannot be downloaded."""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk and could not be fetched.

    The message says which dataset, the absolute folder the files belong in, the expected
    layout, where to get the files and how to let flowgen download them.
    """

    @classmethod
    def build(cls, dataset: str, folder: Path, layout: str, source: str, reason: str) -> DatasetNotFoundError:
        """Format the standard message; ``layout`` is a multi-line listing relative to ``folder``."""
        indented = "\n".join(f"    {line}" for line in layout.strip().splitlines())
        return cls(
            f"{dataset}: {reason}.\n"
            f"  Expected in: {Path(folder).expanduser().resolve()}\n"
            f"  Layout:\n{indented}\n"
            f"  Get it from: {source}\n"
            "  On a machine with internet, `data.download=true` fetches it into that folder "
            "(then copy the folder here if this machine is offline)."
        )
