"""The tool's own RSA keys: which one signs, which ones `/lti/jwks` publishes, and rotation.

Platforms verify what the tool signs (deep-linking responses, client assertions for service tokens) against
the key set at `/lti/jwks`, and cache it. So a rotation is staged by time, with no background job:
- `rotate` adds a key that is published at once but signs only from `activates_at` on (default: an hour
  later), so platforms that cached the old set have seen the new key before it is used;
- the signing key is the newest one whose `activates_at` has passed;
- a key that stopped signing stays published for `RETIRED_KEY_GRACE` (tokens it signed must still verify),
  then disappears from the set; `retire` takes a key out at once (a leaked key).
The kid is the RFC 7638 thumbprint of the public key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.models import LtiKey
from app.models import utcnow

KEY_BITS = 2048
RETIRED_KEY_GRACE = timedelta(days=1)
DEFAULT_PUBLISH_AHEAD = timedelta(hours=1)


@dataclass(frozen=True)
class KeyStatus:
    kid: str
    created_at: datetime
    activates_at: datetime
    status: str  # "signing", "next" (published, not yet signing), "previous" (published, no longer signing), "retired"


def _new_key(activates_at: datetime) -> LtiKey:
    key = RSAKey.generate_key(KEY_BITS, parameters={"use": "sig", "alg": "RS256"}, private=True)
    kid = key.thumbprint()
    return LtiKey(kid=kid, private_jwk=json.dumps(key.as_dict(private=True, kid=kid)), created_at=utcnow(),
                  activates_at=activates_at)


def _live_keys(session: Session) -> list[LtiKey]:
    return list(session.scalars(select(LtiKey).where(LtiKey.retired_at.is_(None))
                                .order_by(LtiKey.activates_at, LtiKey.id)))


def statuses(session: Session, now: datetime | None = None) -> list[KeyStatus]:
    """Every key (retired too), oldest first, with what it does right now."""
    now = now or utcnow()
    keys = list(session.scalars(select(LtiKey).order_by(LtiKey.activates_at, LtiKey.id)))
    live = [k for k in keys if k.retired_at is None]
    active = [k for k in live if k.activates_at <= now]
    signing = active[-1] if active else None
    out = []
    for k in keys:
        if k.retired_at is not None:
            status = "retired"
        elif k is signing:
            status = "signing"
        elif k.activates_at > now:
            status = "next"
        else:
            # Superseded when the next live key activated; published during the grace period after that.
            later = [o.activates_at for o in active if o.activates_at > k.activates_at or
                     (o.activates_at == k.activates_at and o.id > k.id)]
            superseded_at = min(later) if later else now
            status = "previous" if now - superseded_at < RETIRED_KEY_GRACE else "expired"
        out.append(KeyStatus(k.kid, k.created_at, k.activates_at, status))
    return out


def ensure_key(session: Session) -> None:
    """The first start makes a key that signs at once (nothing to stage: no platform has seen any)."""
    if session.scalar(select(LtiKey.id).where(LtiKey.retired_at.is_(None)).limit(1)) is None:
        session.add(_new_key(activates_at=utcnow()))
        session.commit()


def signing_key(session: Session) -> RSAKey:
    """The private key to sign with now (made on first use)."""
    ensure_key(session)
    now = utcnow()
    active = [k for k in _live_keys(session) if k.activates_at <= now]
    if not active:  # only staged keys: the earliest one signs rather than nothing at all
        active = _live_keys(session)[:1]
    return RSAKey.import_key(json.loads(active[-1].private_jwk))


def public_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """The key set platforms verify us with: the signing key, staged keys and recently superseded ones."""
    ensure_key(session)
    published = {s.kid for s in statuses(session) if s.status in ("signing", "next", "previous")}
    keys: list[dict[str, Any]] = []
    for k in _live_keys(session):
        if k.kid in published:
            key = RSAKey.import_key(json.loads(k.private_jwk))
            keys.append(dict(key.as_dict(private=False, kid=k.kid, use="sig", alg="RS256")))
    return {"keys": keys}


def rotate(session: Session, *, publish_ahead: timedelta = DEFAULT_PUBLISH_AHEAD) -> LtiKey:
    """Add a key that signs `publish_ahead` from now (zero: at once). The current key stays published."""
    ensure_key(session)
    key = _new_key(activates_at=utcnow() + publish_ahead)
    session.add(key)
    session.commit()
    return key


def retire(session: Session, kid: str) -> bool:
    """Take a key out of the set and out of signing at once. Refused for the only live key."""
    key = session.scalar(select(LtiKey).where(LtiKey.kid == kid, LtiKey.retired_at.is_(None)))
    if key is None:
        return False
    if len(_live_keys(session)) <= 1:
        raise ValueError("this is the only key; rotate first, then retire it")
    key.retired_at = utcnow()
    session.commit()
    return True
