from firmware import startup

with startup.imports():
    from firmware.cli import main

raise SystemExit(main())
