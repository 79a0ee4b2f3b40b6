"""The ``rooflax`` command: thin commands that parse, call one library function and map errors to exit 2."""

from rooflax.cli.commands import main

__all__ = ["main"]
