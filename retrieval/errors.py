"""The one error base: a GridrankError is a problem the user can fix, and its message says how.

The CLI prints a GridrankError as one line and exits 2; the web app shows its message. Anything
else that escapes is a bug: a traceback and exit 1. Each subclass also derives from the builtin
error it replaced, so `except ValueError` around a query parser still catches a bad query.
"""

from __future__ import annotations


class GridrankError(Exception):
    """A user can fix this: the message names the thing that is wrong and what to do."""


class BadQueryError(GridrankError, ValueError):
    """A query, its weights, filters or options cannot be searched as given."""


class UnknownItemError(BadQueryError):
    """A path that names no indexed item (more-like-this, image terms)."""


class SettingsError(GridrankError, ValueError):
    """A setting has a value that cannot work; the message names it and the fix."""


class BadMediaError(GridrankError, ValueError):
    """A media file cannot be used (not an image, too many pixels, damaged)."""


class IndexNotFoundError(GridrankError, FileNotFoundError):
    """No index where one was expected."""


class IndexBusyError(GridrankError, RuntimeError):
    """Another run is writing the index."""


class IndexSchemaError(GridrankError, RuntimeError):
    """The index was written by a gridrank with another catalog layout."""


class IndexWriteError(GridrankError, OSError):
    """The index could not be written (a full disk, no permission); its last commit is kept."""

    @classmethod
    def at(cls, folder: object, cause: str) -> IndexWriteError:
        """The one message for every write that failed, whichever file (catalog or vectors) it was."""
        return cls(f"cannot write the index in {folder} ({cause}): free some disk space (or pass --index DIR on "
                   "another disk) and run the same command again; the last commit is kept")


class ModelMismatchError(GridrankError, ValueError):
    """The index was built with another model than the one asked for."""


class ModelUnavailableError(GridrankError, RuntimeError):
    """A model could not be loaded (not downloaded, not found, unreadable)."""


class MediaFolderError(GridrankError, FileNotFoundError):
    """The folder to index is missing or is not a folder."""


class EvalInputError(GridrankError, ValueError):
    """An evaluation's inputs (dataset folder, matrices, ground truth, methods) cannot be used as given."""
