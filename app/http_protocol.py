"""uvicorn's HTTP/1.1 protocol with a deadline for receiving each request.

uvicorn closes a keep-alive connection that stays idle *between* requests (`timeout_keep_alive`), but any byte
cancels that timer and nothing bounds how long a request's head and body may take to arrive (uvicorn issue
#157, "--timeout-request-start" / "--timeout-request-complete", open since 2018). So a client that opens
hundreds of connections and sends half a request, or trickles one byte a second, holds them for ever
(slowloris). This subclass arms a deadline when a connection opens and after each response, and disarms it
once the whole request (head and body) has arrived: a request still incomplete at the deadline has its
connection closed. ASGI middleware cannot do this: it runs only once the head is parsed.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("gradax.http")

# The client's side of the exchange is complete from these h11 states on (or cannot continue).
_RECEIVED = frozenset({h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR})


class DeadlineH11Protocol(H11Protocol):
    request_timeout_s: float = 20.0

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in _RECEIVED:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state not in _RECEIVED:
            self._arm()  # waiting for the next request on this connection (or its rest, if pipelined)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state in _RECEIVED:
            return
        log.info("closing a connection from %s: no complete request within %.0f s",
                 self.client[0] if self.client else "?", self.request_timeout_s)
        self.transport.close()


def protocol_with_deadline(request_timeout_s: float) -> type[DeadlineH11Protocol]:
    """The protocol class for `uvicorn.run(http=...)` with this deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout_s": request_timeout_s})
