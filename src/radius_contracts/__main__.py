from radius_contracts.cli import main

raise SystemExit(main())
