"""``python -m trinsq``: the same as the ``trinsq`` command."""

import sys

from trinsq._cli import main

sys.exit(main())
