from regops.cli import main

raise SystemExit(main())
