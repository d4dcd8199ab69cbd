"""Dependencies of the LTI routes: the platform key cache, grade passback and the tool's public address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import SettingsDep, app_part
from app.lti.http import PlatformKeyCache
from app.lti.passback import PassbackSender


def get_tool_url(request: Request, settings: SettingsDep) -> str:
    """Where platforms and browsers reach this server: GRADAX_PUBLIC_URL, else the request's own address."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


PlatformKeysDep = Annotated[PlatformKeyCache, Depends(app_part("lti_platform_keys"))]
PassbackDep = Annotated[PassbackSender, Depends(app_part("lti_passback"))]
ToolUrlDep = Annotated[str, Depends(get_tool_url)]
