"""Errors raised by services and turned into `{detail}` responses with the right status."""

from __future__ import annotations


class AppError(Exception):
    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers


def not_found(what: str) -> AppError:
    return AppError(404, f"{what} not found")
