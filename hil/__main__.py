"""``python -m hil``: run the bench scenarios (``python -m hil.csms`` runs the CSMS alone)."""

from hil.runner import main

raise SystemExit(main())
