"""``python -m adapters``: the ``plughook`` command line."""

import sys

from .cli import main

sys.exit(main())
