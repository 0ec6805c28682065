from __future__ import annotations

from neurodeck.app.cli import main

raise SystemExit(main())
