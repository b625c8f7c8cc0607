from so101d.cli import main

raise SystemExit(main())
