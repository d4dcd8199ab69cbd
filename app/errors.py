"""The one error style of the web layer: routes, pages, dependencies and services raise `AppError`; one
handler (app/main.py) answers API clients `{"detail": ...}` and browsers the error page, with the same status.
"""

from __future__ import annotations


class AppError(Exception):
    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None, *,
                 page_message: str | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        # What the error page says, when a sentence reads better there than the API's detail.
        self.page_message = page_message or detail


def not_found(what: str) -> AppError:
    """404 for anything missing, or not the caller's to see (so that it does not learn it exists)."""
    return AppError(404, f"{what} not found", page_message=f"There is no {what}.")
