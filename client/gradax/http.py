"""A small JSON client for the gradax HTTP API (standard library only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

USER_AGENT = "gradax-client/0.1"
TIMEOUT_S = 60.0
LONG_POLL_S = 20.0


class ClientError(Exception):
    """The server could not be reached or refused the request; the message says what to do."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def normalise_server(server: str) -> str:
    server = server.strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    return server


class Server:
    def __init__(self, base: str, token: str | None = None):
        self.base = normalise_server(base)
        self.token = token

    def request(self, method: str, path: str, *, json_body: Any = None, form: dict[str, str] | None = None,
                timeout: float = TIMEOUT_S) -> Any:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise ClientError(self._explain(exc), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach {self.base}: {reason}") from None
        return json.loads(body) if body else None

    def _explain(self, exc: urllib.error.HTTPError) -> str:
        try:
            detail = json.loads(exc.read()).get("detail")
        except (ValueError, AttributeError, OSError):
            detail = None
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        if exc.code == 401:
            return (f"not logged in to {self.base} (or the token expired): "
                    f"run `gradax login {self.base} --username NAME`")
        return f"{detail or exc.reason} (HTTP {exc.code})"

    def login(self, username: str, password: str) -> str:
        data = self.request("POST", "/auth/token", form={"username": username, "password": password})
        self.token = str(data["access_token"])
        return self.token

    def submit(self, problem_id: str, code: str, mode: str = "submit", deadline_s: float = 600.0) -> dict[str, Any]:
        """Post code and long-poll until it is graded; the submission (with its report) as the API gives it."""
        created = self.request("POST", "/submissions", json_body={"problem_id": problem_id, "code": code,
                                                                   "mode": mode})
        deadline = time.monotonic() + deadline_s
        while True:
            sub = self.request("GET", f"/submissions/{created['id']}?wait={LONG_POLL_S:g}",
                               timeout=LONG_POLL_S + TIMEOUT_S)
            if sub["status"] == "done":
                return dict(sub)
            if time.monotonic() > deadline:
                raise ClientError(f"submission {created['id']} was not graded within {deadline_s:.0f} s; "
                                  "its result will be on the problem page")
