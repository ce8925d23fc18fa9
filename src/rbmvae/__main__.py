"""``python -m rbmvae``: the same as the ``rbmvae`` command."""

import sys

from .cli import main

sys.exit(main())
