"""The ``zoo`` command line: each subcommand lives in its own module, imported only when it runs.

``zoo --help``, ``zoo list`` and ``zoo info ARCH.TAG`` import no PyTorch and start at once; a
subcommand that computes (``eval``, ``train``, ``neurons``, ``publish``, ``info ARCH``) imports
what it needs when it is chosen. ``COMMANDS`` is the one list of subcommands: for ``zoo --help``
each is a stub with its one-line help, and the chosen one is replaced by its module's full parser.

Every user error is one line naming what was wrong and what was expected, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NamedTuple

from . import __version__
from .suggest import unknown


class Command(NamedTuple):
    module: str  # defines add_parser(commands), which registers the subcommand (and run)
    help: str


COMMANDS = {
    "list": Command("zoo.listing", "registered architectures, or published checkpoints with --pretrained"),
    "info": Command("zoo.info", "what a checkpoint (arch.tag) is, or an architecture's defaults and modules"),
    "eval": Command("zoo.evaluation.cli", "evaluate a checkpoint: accuracy, firing, SOPs, energy, NeuroBench metrics, speed"),
    "leaderboard": Command("zoo.evaluation.cli", "regenerate the results CSVs, leaderboard.md and plots"),
    "train": Command("zoo.train.cli", "train a model from a recipe file (recipes/*.yaml)"),
    "publish": Command("zoo.publish", "assemble a checkpoint's Hub repository and upload it"),
    "neurons": Command("zoo.neurons.demo", "run every neuron on a real input, compare backends"),
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``zoo eval: error: ...``) and exit 2,
    like every other user error of the ``zoo`` commands; ``--help`` still prints the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def one_line_errors(command: Callable[[argparse.Namespace], int], prog: str,
                    hint: Callable[[Exception, argparse.Namespace], str] | None = None
                    ) -> Callable[[argparse.Namespace], int]:
    """``command`` with its user errors printed as one line, ``PROG: message``, and exit status 2.

    The zoo's errors about input (a name, config, checkpoint, record or data format) are all
    ValueErrors, and a file or folder that cannot be read or written is an OSError (a data set that
    is not found is both: ``zoo.data``'s MissingDataError is a FileNotFoundError); any other
    exception is a bug and keeps its traceback. An OSError that carries a file name is said as
    ``FILE: reason``. ``hint(error, args)`` may add a sentence (how to fix it on the command line)."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BrokenPipeError:  # not a user error: main() ends quietly
            raise
        except (ValueError, OSError) as error:
            message = str(error)
            if isinstance(error, OSError) and error.filename is not None and error.strerror:
                message = f"{error.filename}: {error.strerror}"
            extra = hint(error, args) if hint is not None else ""
            print(f"{prog}: {' '.join(message.split())}{extra}", file=sys.stderr)
            return 2
    return run


def data_dir_hint(error: Exception, args: argparse.Namespace) -> str:
    """For a data set not found without ``--data-dir``: the option that gives the folder. The error
    class is looked up only where ``zoo.data.errors`` was imported: a process that has not read data
    raised none, and importing it imports PyTorch, which the fast error paths (an unknown name) do
    not."""
    errors = sys.modules.get("zoo.data.errors")
    missing = errors is not None and isinstance(error, errors.MissingDataError)
    return " On the command line: --data-dir DIR." if missing and args.data_dir is None else ""


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type`` for an integer option of at least ``low``: anything else is a usage
    error naming the value and the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line: its first word that is not an option (``zoo``
    itself takes no option with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``zoo`` parser with the full parser of the subcommand ``argv`` names (every subcommand's
    when ``argv`` is None) and stubs for the others."""
    parser = OneLineParser(prog="zoo", description="snnzoo: a model zoo of spiking neural networks",
                           epilog="`zoo COMMAND --help` describes one command.")
    parser.add_argument("--version", action="version", version=f"snnzoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = COMMANDS if argv is None else {chosen_command(argv)}
    for name in wanted:
        if name in COMMANDS and name not in commands.choices:
            importlib.import_module(COMMANDS[name].module).add_parser(commands)
    for name, command in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=command.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``zoo`` console script; ``argv=None`` means this process's own command line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = chosen_command(argv)
    if name is not None and name not in COMMANDS:
        print(f"zoo: error: {unknown('command', name, COMMANDS)}; `zoo --help` lists them", file=sys.stderr)
        return 2
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # the reader of the output went away (`zoo list | head`): no message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (so that the exit flush is quiet)
        return 141  # 128 + SIGPIPE, as a shell reports a process the pipe killed


if __name__ == "__main__":
    sys.exit(main())
