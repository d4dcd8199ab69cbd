"""LTI with a real course (courses/example, hw1: two problems of 10 points, due 2026-03-06 23:59 Zurich, late
until 2026-03-09, 20 % off per started late day): the LMS course maps to it, launches enrol people with their
LMS role, deep linking offers its assignments, and the LMS gets the effective score (late penalty and
instructor overrides included), also after a roster sync."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select

from app.lti.models import LtiContext, LtiGradeSync, LtiResourceLink, LtiUserLink
from app.models import CourseMember, ScoreOverride, utcnow
from app.services.grades import refresh_assignment
from lti.conftest import Browser, GradaxServer, register
from lti.fake_platform import FakePlatform
from lti.test_passback import wait_for

# Naive UTC, as stored: hw1 is due 2026-03-06 22:59 UTC.
ON_TIME = datetime(2026, 3, 5, 12, 0)
ONE_DAY_LATE = datetime(2026, 3, 7, 12, 0)


def submit_at(tool: GradaxServer, user_id: int, problem: str, score: float, when: datetime) -> None:
    from app.models import Attempt, AttemptStatus

    with tool.session() as session:
        session.add(Attempt(user_id=user_id, problem_id=problem, mode="submit", code="x", tries=1,
                            status=AttemptStatus.DONE.value, verdict="accepted" if score == 1 else "wrong_answer",
                            score=score, passed=1, total=1, created_at=when, finished_at=utcnow()))
        session.commit()


def test_assignment_link_enrols_and_posts_the_effective_score(tool: GradaxServer) -> None:
    lms = FakePlatform(tool.url, context_id="ctx-" + secrets.token_hex(3), context_title="NNX 2026").start()
    try:
        register(tool, lms)
        teacher = lms.person("t-" + secrets.token_hex(3), "Grace Teacher", "grace@uni.test", "Instructor")
        ta = lms.person("ta-" + secrets.token_hex(3), "Tim Assistant", "tim@uni.test",
                        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant")
        b = Browser(tool.url)
        r = b.launch(lms.login_params(teacher, "LtiDeepLinkingRequest"))
        assert r.status_code == 303, r.text
        picker = r.headers["location"]
        with tool.session() as session:  # what `gradax lti map-context <platform> <context> example` does
            context = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
            assert context is not None and context.course_id is None
            context.course_id = "example"
            session.commit()
        page = b.http.get(picker).text
        assert 'value="assignment:example/hw1"' in page and "Homework 1" in page
        r = b.http.post("/lti/deep-link", data={"request": picker.split("=", 1)[1], "choice": "assignment:example/hw1",
                                               "csrf_token": b.csrf(picker)})
        assert r.status_code == 200, r.text
        from lti.fake_platform import form_fields

        action, fields = form_fields(r.text)
        assert b.http.post(action, data=fields).status_code == 200
        b.close()
        item = lms.deep_link_items[-1]
        assert item["custom"] == {"gradax_assignment": "example/hw1", "gradax_points": "20", "gradax_course": "example"}
        assert item["lineItem"]["scoreMaximum"] == 20.0
        link = next(x for x in lms.links.values() if x.custom.get("gradax_assignment") == "example/hw1")

        student = lms.person("s-" + secrets.token_hex(3), "Sam Student", "sam-" + secrets.token_hex(2) + "@uni.test",
                             "Learner")
        sb = Browser(tool.url)
        r = sb.launch(lms.login_params(student, link=link))
        assert r.status_code == 303 and r.headers["location"] == "/courses/example"
        course_page = sb.http.get("/courses/example")
        assert course_page.status_code == 200 and "Homework 1" in course_page.text  # enrolled, signed in
        sb.close()
        tb = Browser(tool.url)
        assert tb.launch(lms.login_params(ta, link=link)).status_code == 303
        tb.close()
        with tool.session() as session:
            uid = {row.sub: row.user_id for row in session.scalars(select(LtiUserLink))}
            roles = {m.user_id: (m.role, m.source) for m in session.scalars(
                select(CourseMember).where(CourseMember.course_id == "example"))}
        assert roles[uid[student.sub]] == ("student", "lti")
        assert roles[uid[ta.sub]] == ("ta", "lti")
        assert uid[teacher.sub] not in roles  # mapped after the teacher's launch: enrolled at the next one

        # 10 on time + 10 one day late (-20 %) = 18 of 20.
        submit_at(tool, uid[student.sub], "nnx-module-basics", 1.0, ON_TIME)
        submit_at(tool, uid[student.sub], "nnx-linear-bias", 1.0, ONE_DAY_LATE)
        wait_for(lambda: any(s["scoreGiven"] == 18.0 for s in lms.scores_for(student.sub)), what="18/20")
        assert lms.scores_for(student.sub)[-1]["scoreMaximum"] == 20.0

        # An instructor's override (courses' history row + the refresh its service runs) reaches the LMS too,
        # through the score listener: no attempt finished.
        with tool.session() as session:
            session.add(ScoreOverride(assignment_id=_hw1(session), user_id=uid[student.sub],
                                      problem_id="nnx-linear-bias", points=10.0, previous_points=8.0,
                                      comment="late because of the outage", set_by=uid[teacher.sub]))
            from app.models import Assignment

            refresh_assignment(session, session.get(Assignment, _hw1(session)), reason="override",
                               user_ids=[uid[student.sub]])
            session.commit()
            row = session.scalar(select(LtiGradeSync).where(LtiGradeSync.user_id == uid[student.sub]))
            assert row is not None and row.score_given == 20.0  # recorded in the override's own transaction
        wait_for(lambda: lms.scores_for(student.sub)[-1]["scoreGiven"] == 20.0, what="the overridden 20/20")
        assert [s["scoreGiven"] for s in lms.scores_for(student.sub)].count(20.0) == 1

        # Names and Roles: a member who never launched is enrolled by a roster sync.
        newcomer = lms.person("n-" + secrets.token_hex(3), "Nia New", "nia-" + secrets.token_hex(2) + "@uni.test",
                              "Learner")
        tb = Browser(tool.url)
        assert tb.launch(lms.login_params(teacher, link=link)).status_code == 303
        with tool.session() as session:
            teacher_member = session.get(CourseMember, ("example", uid[teacher.sub]))
            assert teacher_member is not None and teacher_member.role == "instructor"
        status = tb.http.get("/lti/status")
        assert status.status_code == 200 and "example/hw1" in status.text
        with tool.session() as session:
            hw1_link = session.scalar(select(LtiResourceLink.id).where(LtiResourceLink.resource_link_id == link.id))
        r = tb.http.post("/lti/status/resend", data={"link_id": str(hw1_link), "csrf_token": tb.csrf("/lti/status")})
        assert r.status_code == 303 and "Sending+1+grades+again" in r.headers["location"]
        wait_for(lambda: [s["scoreGiven"] for s in lms.scores_for(student.sub)].count(20.0) == 2,
                 what="the re-sent 20/20")
        with tool.session() as session:
            ctx = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
            assert ctx is not None
        r = tb.http.post("/lti/status/roster", data={"context_id": str(ctx.id), "csrf_token": tb.csrf("/lti/status")})
        assert r.status_code == 303 and "Roster+synced" in r.headers["location"], r.headers.get("location")
        tb.close()
        with tool.session() as session:
            new_uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == newcomer.sub))
            member = session.get(CourseMember, ("example", new_uid))
            assert member is not None and (member.role, member.source) == ("student", "lti")
    finally:
        lms.stop()


def _hw1(session) -> int:  # type: ignore[no-untyped-def]
    from app.models import Assignment

    found = session.scalar(select(Assignment.id).where(Assignment.course_id == "example", Assignment.slug == "hw1"))
    assert found is not None
    return int(found)


def test_students_cannot_open_the_status_page_or_deep_link(tool: GradaxServer, lms: FakePlatform) -> None:
    person = lms.person("x-" + secrets.token_hex(3), "Eve Student", "eve@uni.test", "Learner")
    b = Browser(tool.url)
    try:
        r = b.launch(lms.login_params(person, "LtiDeepLinkingRequest"))
        assert r.status_code == 403 and "only instructors" in r.text
        practice = lms.add_link("x", {"gradax_problem": "nnx-mlp"})
        assert b.launch(lms.login_params(person, link=practice)).status_code == 303
        assert b.http.get("/lti/status").status_code == 403
        with tool.session() as session:
            link = session.scalar(select(LtiResourceLink))
        assert link is not None
        r = b.http.post("/lti/status/resend", data={"link_id": str(link.id), "csrf_token": b.csrf("/")})
        assert r.status_code == 403
    finally:
        b.close()


def test_a_hand_made_link_connects_an_lms_course_only_for_an_instructor_of_the_gradax_course(
        tool: GradaxServer) -> None:
    """Moodle lets any teacher type a link's custom parameters. Mallory teaches a sandbox course in the LMS and
    names `example/hw1`: her course is not connected to `example` and she gets no role in it (connected, she
    would be its instructor: gradebook, overrides, everyone's code); her students are told why they are not
    enrolled. The same link launched by an instructor of `example` connects the course, and students then join."""
    from app.models import CourseRole, User
    from app.services.courses import add_member

    lms = FakePlatform(tool.url, context_id="sandbox-" + secrets.token_hex(3), context_title="Mallory's").start()
    try:
        register(tool, lms)
        mallory = lms.person("m-" + secrets.token_hex(3), "Mallory", "mallory@uni.test", "Instructor")
        student = lms.person("s-" + secrets.token_hex(3), "Sid", "sid-" + secrets.token_hex(2) + "@uni.test",
                             "Learner")
        link = lms.add_link("Homework 1", {"gradax_assignment": "example/hw1"})
        for person in (mallory, student):
            b = Browser(tool.url)
            r = b.launch(lms.login_params(person, link=link))
            b.close()
            assert r.status_code == 403 and "which this LMS course is not connected to" in r.text, r.text
        with tool.session() as session:
            context = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
            assert context is not None and context.course_id is None
            uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == mallory.sub))
            assert session.get(CourseMember, ("example", uid)) is None

        teacher = lms.person("t-" + secrets.token_hex(3), "Grace Teacher", "grace-" + secrets.token_hex(2)
                             + "@uni.test", "Instructor")
        b = Browser(tool.url)
        assert b.launch(lms.login_params(teacher, link=link)).status_code == 403  # her LMS account: not staff yet
        with tool.session() as session:  # ... until she is an instructor of example here (course file, staff)
            teacher_uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == teacher.sub))
            account = session.get(User, teacher_uid)
            assert account is not None
            add_member(session, course_id="example", user=account, role=CourseRole.INSTRUCTOR, source="staff")
            session.commit()
        r = b.launch(lms.login_params(teacher, link=link))
        b.close()
        assert (r.status_code, r.headers.get("location")) == (303, "/courses/example"), r.text
        b = Browser(tool.url)
        r = b.launch(lms.login_params(student, link=link))
        b.close()
        assert (r.status_code, r.headers.get("location")) == (303, "/courses/example"), r.text
        with tool.session() as session:
            context = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
            assert context is not None and context.course_id == "example"
            sid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == student.sub))
            member = session.get(CourseMember, ("example", sid))
            assert member is not None and member.role == "student"
    finally:
        lms.stop()
