"""Server-wide knobs set by the CLI and changed at run time through ``POST /_fake/config``.

Per-response behaviour belongs in request metadata (see ``scenarios``); this holds what applies
to *all* traffic: random fault rates, retention, the random seed and webhook delivery. All
randomness goes through one seeded ``random.Random`` so a run can be replayed.
"""

from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field, fields

# Order matters for replay: one draw per request picks at most one fault, in this order.
FAULTS = ("429", "insufficient_quota", "500", "503", "slow", "reset", "malformed")
ROUTES = ("create", "retrieve", "cancel", "delete")


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    faults: dict[str, float] = field(default_factory=dict)  # fault name -> probability
    fault_routes: list[str] = field(default_factory=lambda: list(ROUTES))
    slow_seconds: float = 2.0
    retry_after: float = 1.0
    should_retry: bool | None = None  # adds x-should-retry to injected errors when set
    retention_seconds: float = 600.0
    seed: int | str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_delay: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_drop_rate: float = 0.0
    webhook_bad_signature: float = 0.0  # rate; true = always
    webhook_stale_timestamp: float = 0.0  # rate; true = always
    webhook_max_attempts: int = 6
    webhook_retry_base: float = 0.5  # seconds, doubled per attempt
    webhook_timeout: float = 5.0

    def as_dict(self) -> dict:
        return asdict(self)

    def copy(self) -> Config:
        return copy.deepcopy(self)

    def update(self, changes: dict) -> None:
        """Apply a partial update, validating everything before changing anything."""
        if not isinstance(changes, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ConfigError(f"unknown config fields: {unknown}; known: {sorted(known)}")
        staged = self.copy()
        for key, value in changes.items():
            setattr(staged, key, _coerce(key, value))
        _check_faults(staged.faults)
        bad_routes = set(staged.fault_routes) - set(ROUTES)
        if bad_routes:
            raise ConfigError(f"fault_routes: unknown routes {sorted(bad_routes)}")
        if staged.webhook_secret and not staged.webhook_secret.startswith("whsec_"):
            raise ConfigError("webhook_secret must start with 'whsec_'")
        self.__dict__.update(staged.__dict__)


_FLOATS = {
    "slow_seconds",
    "retry_after",
    "retention_seconds",
    "webhook_delay",
    "webhook_duplicate_rate",
    "webhook_drop_rate",
    "webhook_bad_signature",
    "webhook_stale_timestamp",
    "webhook_retry_base",
    "webhook_timeout",
}


def _coerce(key: str, value):
    if key in _FLOATS:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number") from None
        if number < 0:
            raise ConfigError(f"{key} must be >= 0")
        return number
    if key == "webhook_max_attempts":
        if not isinstance(value, int) or value < 1:
            raise ConfigError("webhook_max_attempts must be an integer >= 1")
        return value
    if key == "faults":
        if not isinstance(value, dict):
            raise ConfigError("faults must be an object of fault name -> probability")
        return {str(k): float(v) for k, v in value.items()}
    if key == "fault_routes":
        if not isinstance(value, list):
            raise ConfigError("fault_routes must be a list")
        return [str(v) for v in value]
    if key == "should_retry" and value is not None and not isinstance(value, bool):
        raise ConfigError("should_retry must be true, false or null")
    return value


def _check_faults(faults: dict[str, float]) -> None:
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ConfigError(f"faults: unknown names {unknown}; known: {list(FAULTS)}")
    if any(not 0 <= rate <= 1 for rate in faults.values()) or sum(faults.values()) > 1:
        raise ConfigError("faults: each rate must be in [0, 1] and together at most 1")


class Chaos:
    """The seeded random source for faults and webhook quirks."""

    def __init__(self, seed: int | str | None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | str | None) -> None:
        self.rng = random.Random(f"chaos:{seed}") if seed is not None else random.Random()

    def pick_fault(self, config: Config, route: str) -> str | None:
        if not config.faults or route not in config.fault_routes:
            return None
        draw = self.rng.random()
        for name in FAULTS:
            rate = config.faults.get(name, 0.0)
            if draw < rate:
                return name
            draw -= rate
        return None

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        return rate >= 1 or self.rng.random() < rate
