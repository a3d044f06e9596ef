"""The attempt: how a delivered run executes, as explicit phases with participants.

- ``flow.py``: ``execute`` (claim → before → run → outcome → finish → release);
- ``run.py``: the run phase (user hooks, the run function, the retry decision);
- ``finish.py``: the one guarded write per outcome, crash budget, TTL expiry;
- ``participants.py``: features on the phases (watchdog, metadata, usage, waiters, slots);
- ``outcome.py``: ``Outcome`` and the control-flow exceptions the Celery layer maps.
"""

from __future__ import annotations

from .finish import expire_run
from .flow import execute
from .outcome import AttemptFailed, DropDelivery, EndAttempt, Outcome
from .participants import DEFAULT_PARTICIPANTS, Attempt, Participant

__all__ = [
    "DEFAULT_PARTICIPANTS",
    "Attempt",
    "AttemptFailed",
    "DropDelivery",
    "EndAttempt",
    "Outcome",
    "Participant",
    "execute",
    "expire_run",
]
