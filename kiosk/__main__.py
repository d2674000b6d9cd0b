"""``python -m kiosk``: the resident kiosk in this terminal (what ``--serve`` runs per browser)."""

import sys

from kiosk.app_cli import main

sys.exit(main())
