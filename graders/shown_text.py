"""Text a submission wrote, made safe to show anywhere a report goes.

A report carries what the submitted code controls: its exception messages and tracebacks, its stdout and
stderr, the names of its classes and dictionary keys. Those go to a terminal (`gradax grade`, the student CLI),
to JUnit XML in CI, to PostgreSQL and to the browser. Each of them breaks on some characters:

- a terminal obeys escape sequences and carriage returns, so a message could clear the screen and draw a fake
  "accepted" line over the real verdict;
- XML 1.0 cannot hold most C0 controls, even escaped, so one printed "\\x00" made the JUnit file unreadable;
- PostgreSQL text cannot hold NUL, so the report's details could not be stored;
- Unicode's bidirectional overrides reorder what a reader sees ("Trojan Source").

`shown` writes each such character as the escape a Python programmer would type (`\\x1b`, `\\u202e`), so the
text stays readable and says what the code really wrote. Newlines and tabs stay. A carriage return before a
newline is dropped (Windows line ends); any other one is written `\\r`. It is idempotent: the escapes it writes
contain no character it escapes.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, the bidirectional controls, and the two
# noncharacters XML forbids.
_UNSAFE = re.compile(
    "\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r\n":
        return "\n"
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: str) -> str:
    """`text` with every character a terminal, XML, PostgreSQL or a bidi-aware reader would mishandle escaped."""
    return _UNSAFE.sub(_escape, text)
