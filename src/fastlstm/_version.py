"""fastlstm's version, read once from the installed metadata (pyproject.toml sets it)."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("fastlstm")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
