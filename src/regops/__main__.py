from regops.launch import run

raise SystemExit(run())
