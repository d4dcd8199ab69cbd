"""Account roles: an enum of their own, free of the ORM, so the `gradax` CLI's `user` command can offer them
without every `gradax` command importing SQLAlchemy and the models (~0.23 s of each command's start)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    STUDENT = "student"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"
