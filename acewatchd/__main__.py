from acewatchd.cli import main

raise SystemExit(main())
