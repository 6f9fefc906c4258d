"""The ``zoo`` command line. Each subcommand lives in its own module; this file only wires them."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from . import info, publish
from .evaluation import cli as evaluation_cli
from .neurons import demo as neuron_demo
from .train import cli as train_cli


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``zoo eval: error: ...``) and exit 2,
    like every other user error of the ``zoo`` commands; ``--help`` still prints the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="zoo", description="snnzoo: a model zoo of spiking neural networks")
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
