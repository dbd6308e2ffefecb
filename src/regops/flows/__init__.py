"""What regops does with the outside world, one flow per module: pull requests (:mod:`.pulls`), the canary run
(:mod:`.canary`), the Hub and serving kept in step with the registry (:mod:`.sync`), git begun before a verb's
imports (:mod:`.begun`). Only these modules and :mod:`regops.workspace` use the adapters."""
