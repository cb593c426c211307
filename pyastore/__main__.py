"""``python -m pyastore`` is the ``pyastore`` command."""

from pyastore.cli import entry_point

entry_point()
