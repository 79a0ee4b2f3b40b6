"""``python -m rooflax.cli``: the ``rooflax`` command."""

import sys

from rooflax.cli.commands import main

sys.exit(main())
