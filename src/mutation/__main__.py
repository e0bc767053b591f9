"""``python -m mutation``: see :mod:`mutation.cli`."""

from mutation.cli import main

raise SystemExit(main())
