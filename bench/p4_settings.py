"""Settings for P4's baseline server: Steward's, with the bench-only urlconf (one bare DRF view).
Middleware, database, cache and DEBUG are exactly what the Steward server runs with."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.p4_baseline"
