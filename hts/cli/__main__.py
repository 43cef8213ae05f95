"""``python -m hts.cli``: the same as the ``hts`` console script."""

from hts.cli import main

main()
