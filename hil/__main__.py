"""``python -m hil``: run the bench CSMS (same options as ``python -m hil.csms``)."""

from hil.csms_cli import main

raise SystemExit(main())
