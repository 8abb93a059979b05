"""``python -m harness.cli``: the ``slmbench`` command."""

import sys

from harness.cli import main

sys.exit(main())
