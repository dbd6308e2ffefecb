"""regops: a model registry that lives in git."""
