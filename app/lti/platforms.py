"""Registered platforms and their deployment ids (`gradax lti add-platform`, `add-deployment`, ...)."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.models import LtiDeployment, LtiPlatform


class RegistrationError(ValueError):
    """A registration the tool refuses, with a message for the operator."""


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise RegistrationError(f"{name} must be an http(s) URL, got {url!r}")
    return url


def add_platform(session: Session, *, name: str, issuer: str, client_id: str, auth_login_url: str,
                 auth_token_url: str, jwks_url: str, deployment_ids: list[str],
                 token_audience: str | None = None) -> LtiPlatform:
    """Register a platform (one issuer may hold several client ids). Refuses a duplicate issuer + client id."""
    if not issuer.strip() or not client_id.strip():
        raise RegistrationError("issuer and client id must not be empty")
    existing = find_platform(session, issuer=issuer, client_id=client_id)
    if existing is not None:
        raise RegistrationError(f"platform {issuer!r} with client id {client_id!r} is already registered "
                                f"(id {existing.id}); remove it first or add a deployment to it")
    platform = LtiPlatform(name=name or issuer, issuer=issuer, client_id=client_id,
                           auth_login_url=_check_url("auth login URL", auth_login_url),
                           auth_token_url=_check_url("auth token URL", auth_token_url),
                           jwks_url=_check_url("JWKS URL", jwks_url), token_audience=token_audience or None)
    platform.deployments = [LtiDeployment(deployment_id=d) for d in dict.fromkeys(deployment_ids) if d]
    session.add(platform)
    session.commit()
    return platform


def add_deployment(session: Session, platform: LtiPlatform, deployment_id: str) -> bool:
    """False when the platform already has it."""
    if not deployment_id:
        raise RegistrationError("the deployment id must not be empty")
    if deployment_id in {d.deployment_id for d in platform.deployments}:
        return False
    platform.deployments.append(LtiDeployment(deployment_id=deployment_id))
    session.commit()
    return True


def remove_deployment(session: Session, platform: LtiPlatform, deployment_id: str) -> bool:
    for d in platform.deployments:
        if d.deployment_id == deployment_id:
            platform.deployments.remove(d)
            session.commit()
            return True
    return False


def find_platform(session: Session, *, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The platform for an issuer and client id; without a client id, the issuer's only registration."""
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
    if client_id:
        return session.scalar(query.where(LtiPlatform.client_id == client_id))
    found = list(session.scalars(query.limit(2)))
    return found[0] if len(found) == 1 else None


def get_platform(session: Session, ref: str) -> LtiPlatform | None:
    """By numeric id or by issuer (when the issuer has one registration): how the CLI names a platform."""
    if ref.isdigit():
        return session.get(LtiPlatform, int(ref))
    return find_platform(session, issuer=ref, client_id=None)


def list_platforms(session: Session) -> list[LtiPlatform]:
    return list(session.scalars(select(LtiPlatform).order_by(LtiPlatform.id)))


def has_deployment(platform: LtiPlatform, deployment_id: str) -> bool:
    return any(d.deployment_id == deployment_id for d in platform.deployments)
