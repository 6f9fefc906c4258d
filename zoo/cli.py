"""The ``zoo`` command line. Each subcommand lives in its own module; this file only wires them."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from . import info, publish
from .evaluation import cli as evaluation_cli
from .neurons import demo as neuron_demo
from .train import cli as train_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="snnzoo: a model zoo of spiking neural networks")
    parser.add_argument("--version", action="version", version=f"snnzoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    neuron_demo.add_parser(commands)
    info.add_parser(commands)
    publish.add_parser(commands)
    evaluation_cli.add_parser(commands)
    train_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``zoo`` console script; ``argv=None`` means this process's own command line."""
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
