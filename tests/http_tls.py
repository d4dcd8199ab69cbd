"""One TLS context for every HTTP client the tests open.

httpx builds a context for each new client (and for each `httpx.get`), parsing the whole CA bundle: ~40 ms of a
core each, 55 CPU-s of a full run (300 long polls and 75 logins each open a client). The servers under test speak
plain HTTP, so the context is never used for a handshake; sharing it changes nothing but the cost.
"""

from __future__ import annotations

import httpx

TLS = httpx.create_ssl_context()
