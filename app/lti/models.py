"""LTI 1.3 tables: registered platforms and deployments, the tool's signing keys, one-time login states,
accounts and contexts linked by the platform's ids, resource links, deep-linking requests, and the grade
passback outbox (one row per resource link and student: the score to post and the score last posted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.models import utcnow


class LtiPlatform(Base):
    """An LMS registered with `gradax lti add-platform`: who it is (issuer + client id) and its endpoints."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(Text)  # OIDC authorization endpoint (the launch's second leg)
    auth_token_url: Mapped[str] = mapped_column(Text)  # OAuth2 token endpoint (client credentials for AGS/NRPS)
    jwks_url: Mapped[str] = mapped_column(Text)  # the platform's public key set
    # The `aud` of our client assertion when the token endpoint wants something else than its own URL (Moodle,
    # Canvas: the token URL; Brightspace: a fixed audience).
    token_audience: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    deployments: Mapped[list[LtiDeployment]] = relationship(back_populates="platform", cascade="all, delete-orphan",
                                                            order_by="LtiDeployment.id")


class LtiDeployment(Base):
    """A deployment id the platform may launch with; a launch naming any other is refused."""

    __tablename__ = "lti_deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id", name="uq_lti_deployments_platform_dep"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    platform: Mapped[LtiPlatform] = relationship(back_populates="deployments")


class LtiKey(Base):
    """One of the tool's RSA keys (app/lti/keys.py says which one signs and which are published)."""

    __tablename__ = "lti_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)  # RFC 7638 thumbprint of the public key
    private_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Signs from this moment on (a rotated-in key is published first, so platforms see it before it is used).
    activates_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class LtiLoginState(Base):
    """One OIDC login: the `state` we sent and the `nonce` the id_token must carry. Used once, then dead."""

    __tablename__ = "lti_login_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    target_link_uri: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class LtiUserLink(Base):
    """A gradax account is the platform's user `sub` (ids are only unique per issuer)."""

    __tablename__ = "lti_user_links"

    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"), primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_launch_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LtiContext(Base):
    """A course on the platform (the launch's context claim) and what it maps to here."""

    __tablename__ = "lti_contexts"
    __table_args__ = (UniqueConstraint("platform_id", "context_id", name="uq_lti_contexts_platform_context"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"), index=True)
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(200), default="")
    label: Mapped[str] = mapped_column(String(200), default="")
    deployment_id: Mapped[str] = mapped_column(String(255), default="")
    # The gradax course this LMS course is: set by the first link to one of its assignments (deep linking or a
    # `gradax_course` custom parameter) or by `gradax lti map-context`. Launches enrol people in it.
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"), index=True,
                                                  default=None)
    # Names and Roles: the roster URL from the latest launch (absent when the platform does not offer it).
    memberships_url: Mapped[str | None] = mapped_column(Text, default=None)
    roster_synced_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    platform: Mapped[LtiPlatform] = relationship()


class LtiResourceLink(Base):
    """A link in the LMS to one gradax assignment or problem, with its grade column (AGS line item)."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id", name="uq_lti_resource_links_platform_link"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"), index=True)
    context_pk: Mapped[int | None] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"), index=True,
                                                   default=None)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    deployment_id: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    # What it opens: "problem" (target = problem id) or "assignment" (target = "<course>/<assignment>").
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(200))
    # Points of the grade column (the deep link's lineItem scoreMaximum, repeated in its custom parameters).
    score_maximum: Mapped[float | None] = mapped_column(Float, default=None)
    # AGS: the line item the scores go to (from the launch, or created by us exactly once) and the endpoints.
    lineitem_url: Mapped[str | None] = mapped_column(Text, default=None)
    lineitems_url: Mapped[str | None] = mapped_column(Text, default=None)
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    platform: Mapped[LtiPlatform] = relationship()
    context: Mapped[LtiContext | None] = relationship()


class LtiGradeSync(Base):
    """The passback outbox: for one student on one resource link, the score to post and the one last posted.

    A post is due while `score_given` differs from `posted_score` (or `force` is set by "send all grades
    again"). The row is the durable record, so a restart or a platform outage loses nothing: the sender
    retries with backoff (`next_try_at`) until the platform takes it. Equal scores are never posted twice.
    """

    __tablename__ = "lti_grade_syncs"
    __table_args__ = (UniqueConstraint("link_id", "user_id", name="uq_lti_grade_syncs_link_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("lti_resource_links.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lti_user_id: Mapped[str] = mapped_column(String(255))  # the platform's `sub` for this student
    # None until the student has a graded Submit: nothing is posted for someone who never tried.
    score_given: Mapped[float | None] = mapped_column(Float, default=None)
    score_maximum: Mapped[float] = mapped_column(Float, default=1.0)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # the score's timestamp for AGS
    posted_score: Mapped[float | None] = mapped_column(Float, default=None)
    posted_maximum: Mapped[float | None] = mapped_column(Float, default=None)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    force: Mapped[bool] = mapped_column(default=False)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # A sender holds the row until then while it posts, so two server processes never post it at once.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    link: Mapped[LtiResourceLink] = relationship()


class LtiDeepLinkRequest(Base):
    """An instructor's deep-linking launch, waiting for them to pick what to link (single use)."""

    __tablename__ = "lti_deep_link_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    context_pk: Mapped[int | None] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"), default=None)
    return_url: Mapped[str] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text, default=None)  # echoed back to the platform untouched
    accept_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    platform: Mapped[LtiPlatform] = relationship()


class LtiRegistration(Base):
    """A one-time LTI Dynamic Registration URL an administrator made (`gradax lti registration-url`).

    Registering a platform is trusting it: its launches sign people in (accounts are linked by email). So a
    platform registers itself only through a URL gradax issued, once, before it expires. Only a hash of the
    URL's key is stored.
    """

    __tablename__ = "lti_registrations"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")  # what the platform will be called here
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("lti_platforms.id", ondelete="SET NULL"),
                                                    default=None)
