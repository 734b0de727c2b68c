"""``python -m hashlearn``: the ``hashlearn`` command."""

import sys

from hashlearn.cli.main import main

sys.exit(main())
