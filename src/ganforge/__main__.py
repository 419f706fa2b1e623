"""`python -m ganforge ...` (and `torchrun -m ganforge ...`): the same entry point as the `ganforge` command."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
