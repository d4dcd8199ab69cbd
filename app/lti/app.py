"""What the LTI tool keeps running in the server: the platform key cache, service tokens and grade passback."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.lti import keys
from app.lti.http import PlatformKeyCache
from app.lti.passback import PassbackSender, install_score_listener
from app.lti.roster import RosterScheduler
from app.lti.services import PlatformServices


class LtiRuntime:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]):
        install_score_listener()
        self.platform_keys = PlatformKeyCache(ttl_s=settings.lti_jwks_cache_s, timeout_s=settings.lti_http_timeout_s)

        def signing_key():  # type: ignore[no-untyped-def]
            with session_factory() as session:
                return keys.signing_key(session)

        self.services = PlatformServices(signing_key=signing_key, timeout_s=settings.lti_http_timeout_s)
        self.passback = PassbackSender(session_factory, self.services, retry_base_s=settings.lti_retry_base_s,
                                       retry_max_s=settings.lti_retry_max_s, reconcile_s=settings.lti_reconcile_s)
        self.roster = RosterScheduler(session_factory, self.services, interval_s=settings.lti_roster_sync_s)

    def start(self) -> None:
        self.passback.start()
        self.roster.start()

    def stop(self) -> None:
        self.passback.stop()
        self.roster.stop()
