"""Allow ``python -m pvemcp``."""

from pvemcp.cli import main

raise SystemExit(main())
