"""``zoo list [PATTERN] [--pretrained]``: the registered architectures, or the published checkpoints.

    zoo list                  every architecture
    zoo list resnet20         the architectures whose name contains "resnet20"
    zoo list 'ds_resnet*'     a glob
    zoo list --pretrained     every published checkpoint (arch.tag; `zoo info arch.tag` describes one)

Read from the package's files without importing PyTorch (:mod:`zoo.catalog`). A pattern that matches
nothing prints one line with the closest names on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys

from . import catalog
from .suggest import closest


def add_parser(commands) -> None:
    p = commands.add_parser("list", help="registered architectures, or published checkpoints with --pretrained",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pattern", nargs="?", default=None,
                   help="a glob (ds_resnet*), or a part of the name (resnet20); default: all")
    p.add_argument("--pretrained", action="store_true", help="published checkpoints (arch.tag) instead of architectures")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        names = sorted(catalog.published()) if args.pretrained else catalog.architectures()
    except catalog.CatalogError as error:
        print(f"zoo list: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    found = catalog.match(names, args.pattern)
    if not found:
        what = "published checkpoint" if args.pretrained else "architecture"
        close = closest(args.pattern, names)
        hint = f"; similar: {', '.join(close)}" if close else ""
        print(f"zoo list: no {what} matches {args.pattern!r}{hint}", file=sys.stderr)
        return 1
    print("\n".join(found))
    return 0
