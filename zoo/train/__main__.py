"""``python -m zoo.train RECIPE ...`` (also the target of ``torchrun -m zoo.train``)."""

import sys

from .cli import main

sys.exit(main())
