"""LTI test fixtures: gradax served by uvicorn on loopback (platforms call it: key set, deep links), a fake
LTI 1.3 platform on another port, registered with gradax, and a scripted browser that does the launch legs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api.helpers import ROOT_PROBLEMS, make_settings
from fastapi import FastAPI
from http_tls import TLS

from app.core.config import Settings
from app.lti.platforms import add_platform
from app.main import create_app
from graders.problem import ProblemBank
from lti.fake_platform import FakePlatform, Person, ResourceLink, form_fields


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GradaxServer:
    """The real app under uvicorn in a thread; `restart()` stops it and starts a new app on the same database."""

    def __init__(self, settings: Settings, bank: ProblemBank):
        self.settings = settings
        self.bank = bank
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> GradaxServer:
        self.app = create_app(self.settings, bank=self.bank)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="gradax-under-test", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gradax did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def session(self) -> Any:
        assert self.app is not None
        return self.app.state.session_factory()


@pytest.fixture(scope="module")
def lti_bank() -> ProblemBank:
    return ProblemBank(ROOT_PROBLEMS)


def lti_settings(tmp: Path, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"lti_retry_base_s": 0.2, "lti_retry_max_s": 1.0, "lti_reconcile_s": 0,
                              "lti_roster_sync_s": 0, "grading_workers": 0}
    values.update(overrides)
    return make_settings(tmp, data_dir, **values)


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, lti_bank: ProblemBank) -> Iterator[GradaxServer]:
    """One gradax server per test module (no grading threads: these tests store graded attempts themselves)."""
    server = GradaxServer(lti_settings(tmp_path_factory.mktemp("lti"), data_dir), lti_bank).start()
    yield server
    server.stop()


def register(server: GradaxServer, platform: FakePlatform) -> None:
    with server.session() as session:
        add_platform(session, name="Fake LMS", issuer=platform.issuer, client_id=platform.client_id,
                     auth_login_url=platform.base + "/auth", auth_token_url=platform.base + "/token",
                     jwks_url=platform.base + "/jwks", deployment_ids=[platform.deployment_id])


@pytest.fixture(scope="module")
def lms(tool: GradaxServer) -> Iterator[FakePlatform]:
    platform = FakePlatform(tool.url).start()
    register(tool, platform)
    yield platform
    platform.stop()


class Browser:
    """What a browser does in a launch, step by step, with its own cookies. The state cookie is Secure, which
    Chromium sends to http://127.0.0.1 (a secure context) but httpx does not, so this browser carries it."""

    def __init__(self, gradax_url: str):
        self.http = httpx.Client(base_url=gradax_url, follow_redirects=False, timeout=30, verify=TLS)
        self.state_cookies: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def login(self, params: dict[str, str]) -> httpx.Response:
        r = self.http.post("/lti/login", data=params)
        for cookie in r.headers.get_list("set-cookie"):
            name, _, rest = cookie.partition("=")
            if name.startswith("gradax-lti-"):
                self.state_cookies[name] = rest.split(";", 1)[0]
        return r

    def authorize(self, login: httpx.Response) -> tuple[str, dict[str, str]]:
        """Follow the tool's redirect to the platform; returns the form the platform auto-posts back."""
        assert login.status_code == 302, login.text
        page = httpx.get(login.headers["location"], timeout=30, verify=TLS)
        assert page.status_code == 200, page.text
        return form_fields(page.text)

    def post_launch(self, action: str, fields: dict[str, str], *, with_state_cookie: bool = True) -> httpx.Response:
        assert action.startswith(str(self.http.base_url).rstrip("/"))
        cookies = "; ".join(f"{k}={v}" for k, v in self.state_cookies.items()) if with_state_cookie else ""
        headers = {"Cookie": cookies} if cookies else {}
        return self.http.post("/lti/launch", data=fields, headers=headers)

    def launch(self, params: dict[str, str]) -> httpx.Response:
        return self.post_launch(*self.authorize(self.login(params)))

    def csrf(self, path: str) -> str:
        import re

        page = self.http.get(path)
        assert page.status_code == 200, page.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or \
            re.search(r'"csrf":\s*"([^"]+)"', page.text)
        assert match, "no CSRF token on " + path
        return match.group(1)


@pytest.fixture
def user_agent(tool: GradaxServer) -> Iterator[Browser]:
    b = Browser(tool.url)
    yield b
    b.close()


__all__ = ["Browser", "FakePlatform", "GradaxServer", "Person", "ResourceLink"]
