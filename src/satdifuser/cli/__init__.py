"""Command-line interface: ``satdifuser <subcommand> ...``. Only this package reads argv and env."""

from satdifuser.cli.main import main

__all__ = ["main"]
