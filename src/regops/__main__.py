from regops.cli import run

raise SystemExit(run())
