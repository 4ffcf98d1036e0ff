"""`python -m bot` is the same as the `rebalance-bot` console script."""

from bot.cli.main import main

raise SystemExit(main())
