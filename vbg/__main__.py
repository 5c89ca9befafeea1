from vbg.cli import main

raise SystemExit(main())
