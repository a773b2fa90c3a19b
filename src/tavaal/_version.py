"""The installed package's version, read once (the records and saved learners carry it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tavaal")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
