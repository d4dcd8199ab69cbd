"""What the web app needs from a grading backend: `Dispatcher`, with two implementations.

- `InProcessDispatcher` (app/grading/inprocess_dispatcher.py): grading threads inside the server, the embedded
  default;
- `QueueDispatcher` (app/grading/queue_dispatcher.py): the server only sends attempt ids to Redis and
  `gradax worker` processes grade them (scale-out).
Both change attempt state only through app/grading/claims.py, so they agree on every transition.
"""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    def start(self) -> None:
        """Begin grading (or sending), and sweeping for claims whose grader stopped."""

    def stop(self, timeout: float = 5.0) -> int:
        """Stop; gradings still running after `timeout` seconds go back to the queue. Returns how many did."""

    def submit(self, attempt_id: int) -> bool:
        """Tell the graders that a committed queued attempt is waiting. False when it could not be told now
        (nothing is lost: the attempt row is queued, and the sweep or an idle grader finds it)."""
