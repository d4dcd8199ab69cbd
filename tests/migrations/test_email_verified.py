"""Migration 0013: only emails an LMS gave (accounts a launch created, with no password) start verified; an email
typed at registration does not, so it links no LMS identity and names no staff member on a roster."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.migrate import upgrade_to_head
from migrations.conftest import database_at


def test_accounts_an_lms_made_keep_a_verified_email_and_typed_ones_do_not(tmp_path: Path) -> None:
    engine = database_at(tmp_path, "0012")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, username, password_hash, role, email, created_at) VALUES "
                             "(1, 'ada', '!lti', 'student', 'ada@uni.test', '2026-01-01 00:00:00'), "
                             "(2, 'mallory', '$argon2id$x', 'student', 'grace@uni.test', '2026-01-01 00:00:00'), "
                             "(3, 'bob', '!lti', 'student', NULL, '2026-01-01 00:00:00')"))
    upgrade_to_head(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT username, email_verified FROM users ORDER BY id")).all()
    engine.dispose()
    assert [(name, bool(verified)) for name, verified in rows] == [("ada", True), ("mallory", False), ("bob", False)]
