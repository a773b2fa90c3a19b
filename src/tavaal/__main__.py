from tavaal.cli import main

raise SystemExit(main())
