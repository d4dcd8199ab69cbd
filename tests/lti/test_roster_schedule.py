"""Scheduled Names and Roles syncs: the server's roster thread enrols an LMS course's members without anyone
asking, once per interval, shares the work between processes through the database, and backs off a platform
that fails without hiding that its roster is out of date."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.lti.models import LtiContext, LtiPlatform, LtiUserLink
from app.lti.roster import RosterScheduler
from app.models import CourseMember, utcnow
from graders.problem import ProblemBank

from .conftest import GradaxServer, lti_settings, register
from .fake_platform import FakePlatform

INTERVAL_S = 24.0  # a look every 0.2 s, a failed course again after 1 s


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
              lti_bank: ProblemBank) -> Iterator[tuple[GradaxServer, FakePlatform]]:
    server = GradaxServer(lti_settings(tmp_path_factory.mktemp("lti-roster"), data_dir,
                                       lti_roster_sync_s=INTERVAL_S), lti_bank).start()
    platform = FakePlatform(server.url).start()
    register(server, platform)
    yield server, platform
    platform.stop()
    server.stop()


def _member(server: GradaxServer, sub: str) -> CourseMember | None:
    with server.session() as session:
        uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub))
        return None if uid is None else session.get(CourseMember, ("example", uid))


def _synced_at(server: GradaxServer, context: int) -> object:
    with server.session() as session:
        return session.scalar(select(LtiContext.roster_synced_at).where(LtiContext.id == context))


def _wait(check, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_the_server_syncs_a_mapped_roster_on_schedule_and_backs_off_a_failing_platform(
        scheduled: tuple[GradaxServer, FakePlatform]) -> None:
    server, lms = scheduled
    first = lms.person("r-" + secrets.token_hex(3), "Rita Roster", "rita@uni.test", "Learner")
    # What a launch leaves behind: the LMS course, mapped to a gradax course, with its roster URL.
    with server.session() as session:
        platform_id = session.scalar(select(LtiPlatform.id).where(LtiPlatform.issuer == lms.issuer))
        context = LtiContext(platform_id=platform_id, context_id=lms.context_id, course_id="example",
                             memberships_url=f"{lms.base}/memberships/{lms.context_id}")
        session.add(context)
        session.commit()
        context_id = context.id
    # Nobody asks: the server's roster thread enrols her.
    assert _wait(lambda: _member(server, first.sub) is not None), "the scheduled sync never ran"
    member = _member(server, first.sub)
    assert member is not None and (member.role, member.source) == ("student", "lti")
    synced = _synced_at(server, context_id)
    assert synced is not None
    # Not due again within the interval: someone added now waits for the next round.
    second = lms.person("s-" + secrets.token_hex(3), "Sam Second", "sam@uni.test", "Learner")
    time.sleep(1.0)
    assert _member(server, second.sub) is None and _synced_at(server, context_id) == synced
    # Due, but the platform is down: the failure is logged, the last good sync time stays, and the course is
    # tried again after the back-off, not at every look.
    earlier = utcnow() - timedelta(seconds=2 * INTERVAL_S)
    with server.session() as session:
        session.get(LtiContext, context_id).roster_synced_at = earlier  # type: ignore[union-attr]
        session.commit()
    failed_before = lms.failed_calls
    lms.down = True
    try:
        assert _wait(lambda: lms.failed_calls > failed_before), "the due sync was not tried"
        time.sleep(0.6)  # three more looks inside the back-off
        assert lms.failed_calls == failed_before + 1
        assert _synced_at(server, context_id) == earlier and _member(server, second.sub) is None
    finally:
        lms.down = False
    assert _wait(lambda: _member(server, second.sub) is not None), "the sync was not tried again"
    assert _synced_at(server, context_id) != earlier


def test_two_processes_never_sync_the_same_roster_twice(scheduled: tuple[GradaxServer, FakePlatform]) -> None:
    """The claim is a conditional UPDATE of the sync time: a second scheduler (another web process on the same
    database) that looked at the same moment finds the course taken and leaves it alone."""
    server, lms = scheduled
    assert server.app is not None
    server.app.state.lti_roster.stop()  # two schedulers of our own: the server's thread would race them
    one, two = (RosterScheduler(server.app.state.session_factory, server.app.state.lti_roster.services,
                                interval_s=INTERVAL_S) for _ in range(2))
    with server.session() as session:
        context = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
        assert context is not None
        previous = context.roster_synced_at = utcnow() - timedelta(seconds=2 * INTERVAL_S)
        session.commit()
        context_id = context.id
    assert one._claim(context_id, previous)
    assert not two._claim(context_id, previous), "both processes claimed the same round"
    assert two.sync_due() == [], "a claimed course is not due"
