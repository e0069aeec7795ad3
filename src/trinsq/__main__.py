"""``python -m trinsq``: the same as the ``trinsq`` command."""

from trinsq._cli import run

run()
