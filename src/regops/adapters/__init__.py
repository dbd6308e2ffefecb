"""The outside world: one adapter per client (local folders now; the Hub and GitHub later)."""
