from crid.cli import main

raise SystemExit(main())
