"""``python -m hmgdm_core.cli``: the same as the ``hmgdm`` command."""

import sys

from hmgdm_core.cli import main

if __name__ == "__main__":  # importing the module (e.g. walking the package) must not run the command
    sys.exit(main())
