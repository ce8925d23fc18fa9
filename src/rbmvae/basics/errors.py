"""The package's own error types.

Every failure that a user can cause (bad data, bad arguments, bad checkpoints) raises a subclass
of :class:`RbmvaeError` with a one-line message that names the problem and what to do. The command
line prints that line and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class RbmvaeError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(RbmvaeError):
    """A data file or data set is missing, malformed, or fails its hash check."""


class CheckpointError(RbmvaeError):
    """A checkpoint is missing, truncated, of another kind, or of an unknown format version."""


class ConfigError(RbmvaeError, ValueError):
    """An argument or hyper-parameter is out of its valid range."""


class TrainingError(RbmvaeError):
    """Training stopped because the loss or a weight became non-finite."""


class OutputError(RbmvaeError):
    """A result cannot be written: disk full, no permission, or the path is not a directory."""


class BusyError(RbmvaeError):
    """Another process is using the same model directory."""
