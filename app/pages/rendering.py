"""What every server-rendered page uses: the templates, `page()`, the error page, and redirects back to a page
with a message (post/redirect/get)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import URL

from app.pages.deps import csrf_token
from app.services.problems import render_inline
from app.services.users import REGISTRATION_CLOSED

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
# Hints, diagnoses and known-mistake messages are one line of Markdown: rendered and sanitised (nh3).
TEMPLATES.env.filters["markdown_inline"] = render_inline
# The closed-registration page says what the API's 403 says, from one text.
TEMPLATES.env.globals["registration_closed"] = REGISTRATION_CLOSED


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    settings = getattr(request.app.state, "settings", None)
    context = {"csrf_token": csrf_token(request), "user": None,
               "registration": getattr(settings, "registration", "open"), **context}
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    return page(request, "error.html", {"status_code": status_code, "message": message}, status_code=status_code)


def back(path: str, message: str = "", error: str = "") -> RedirectResponse:
    """See other: `path` with a message (`m`) or an error (`e`) for the page to show."""
    params = {k: v for k, v in (("m", message), ("e", error)) if v}
    return RedirectResponse(str(URL(path).include_query_params(**params)), status_code=303)
