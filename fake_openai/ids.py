"""Identifiers shaped like OpenAI's (``resp_…``, ``msg_…``, ``evt_…``, ``req_…``, ``wh_…``).

Steward stores and logs these ids, so their shape matters more than their entropy. A seeded
factory makes a whole run replayable (same ids in the same order); without a seed the ids come
from a ``random.Random`` seeded by the OS, which is much cheaper than ``secrets`` per request.
"""

from __future__ import annotations

import hashlib
import random

# Hex digits after the prefix, as seen in real ids (resp_ ids carry 50, request ids 32).
_LONG = 50
_SHORT = 32


class IdFactory:
    """Makes fresh ids; ``reseed`` restarts the sequence for replayable runs."""

    def __init__(self, seed: int | str | None = None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | str | None) -> None:
        self._rng = random.Random(f"ids:{seed}") if seed is not None else random.Random()

    def _hex(self, digits: int) -> str:
        return format(self._rng.getrandbits(digits * 4), f"0{digits}x")

    def response(self) -> str:
        return "resp_" + self._hex(_LONG)

    def request(self) -> str:
        return "req_" + self._hex(_SHORT)

    def event(self) -> str:
        return "evt_" + self._hex(_SHORT)

    def webhook(self) -> str:
        return "wh_" + self._hex(_SHORT)


def message_id_for(response_id: str) -> str:
    """The output message id is derived from the response id so replays stay identical."""
    return "msg_" + hashlib.sha256(response_id.encode()).hexdigest()[:_LONG]
