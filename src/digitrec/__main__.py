"""Run the ``digitrec`` command with ``python -m digitrec``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
