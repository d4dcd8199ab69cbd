"""Deep linking and grade passback against the fake platform: line items once, scores once per change,
retries while the platform is down, nothing lost across a restart, and "send all grades again".

Graded Submits are stored directly as attempts (as the grader would store them): what is tested here is what
happens after a score changes. tests/lti/test_full_flow.py grades a real submission end to end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from sqlalchemy import select

from app.lti.models import LtiGradeSync, LtiResourceLink, LtiUserLink
from app.lti.passback import link_status, resend_all
from app.models import Attempt, AttemptStatus, utcnow
from lti.conftest import Browser, GradaxServer
from lti.fake_platform import FakePlatform, Person, ResourceLink, form_fields

PID = "nnx-mlp"


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def graded_submit(tool: GradaxServer, sub: str, score: float, problem: str = PID) -> None:
    """A Submit of this student, graded with `score` (what the grading threads store)."""
    with tool.session() as session:
        user_id = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub))
        now = utcnow()
        session.add(Attempt(user_id=user_id, problem_id=problem, mode="submit", code="def f(): pass",
                            status=AttemptStatus.DONE.value, verdict="accepted" if score == 1 else "wrong_answer",
                            score=score, passed=0, total=1, created_at=now, finished_at=now, tries=1))
        session.commit()


def deep_link(tool: GradaxServer, lms: FakePlatform, choice: str) -> ResourceLink:
    """An instructor adds gradax content from the LMS: deep-linking launch, picker, response to the LMS."""
    teacher = lms.person("t-" + secrets.token_hex(3), "Grace Teacher", "grace@uni.test", "Instructor")
    b = Browser(tool.url)
    try:
        r = b.launch(lms.login_params(teacher, "LtiDeepLinkingRequest"))
        assert r.status_code == 303, r.text
        picker = r.headers["location"]
        assert picker.startswith("/lti/deep-link?request=")
        page = b.http.get(picker)
        assert page.status_code == 200 and f'value="{choice}"' in page.text
        request_id = picker.split("=", 1)[1]
        r = b.http.post("/lti/deep-link", data={"request": request_id, "choice": choice,
                                               "csrf_token": b.csrf(picker)})
        assert r.status_code == 200, r.text
        assert "form-action " + lms.base in r.headers["content-security-policy"]
        action, fields = form_fields(r.text)
        assert action == lms.base + "/deep-link-return"
        returned = b.http.post(action, data=fields)  # the browser posts the signed response to the LMS
        assert returned.status_code == 200, returned.text
        # The picker is single use.
        again = b.http.post("/lti/deep-link", data={"request": request_id, "choice": choice,
                                                   "csrf_token": b.csrf("/")})
        assert again.status_code == 409
    finally:
        b.close()
    link_id = returned.text.split("Linked: ", 1)[1].split("<", 1)[0].strip()
    return lms.links[link_id]


def student_launch(tool: GradaxServer, lms: FakePlatform, link: ResourceLink) -> Person:
    sub = "s-" + secrets.token_hex(4)
    person = lms.person(sub, f"Sam {sub}", f"{sub}@uni.test", "Learner")
    b = Browser(tool.url)
    try:
        r = b.launch(lms.login_params(person, link=link))
        assert r.status_code == 303, r.text
    finally:
        b.close()
    return person


def test_deep_link_creates_a_graded_link_and_scores_arrive_once_per_change(tool: GradaxServer,
                                                                           lms: FakePlatform) -> None:
    link = deep_link(tool, lms, f"problem:{PID}")
    item = lms.deep_link_items[-1]
    assert item["custom"] == {"gradax_problem": PID, "gradax_points": "1"}
    assert item["lineItem"]["scoreMaximum"] == 1.0 and item["url"] == tool.url + "/lti/launch"
    lineitems_before = len(lms.lineitems)

    person = student_launch(tool, lms, link)
    assert lms.scores_for(person.sub) == []  # nothing posted before a graded Submit

    graded_submit(tool, person.sub, 0.5)
    wait_for(lambda: len(lms.scores_for(person.sub)) == 1, what="the first score")
    first = lms.scores_for(person.sub)[0]
    assert (first["scoreGiven"], first["scoreMaximum"]) == (0.5, 1.0)
    assert first["lineitem"] == link.lineitem_id  # the line item the LMS made from the deep link
    assert first["activityProgress"] == "Completed" and first["gradingProgress"] == "FullyGraded"

    graded_submit(tool, person.sub, 0.25)  # worse than the best: the effective score stays 0.5
    graded_submit(tool, person.sub, 1.0)
    wait_for(lambda: len(lms.scores_for(person.sub)) == 2, what="the improved score")
    time.sleep(2.5)  # the sender has looked several times by now
    scores = lms.scores_for(person.sub)
    assert [s["scoreGiven"] for s in scores] == [0.5, 1.0]
    assert scores[0]["timestamp"] < scores[1]["timestamp"]
    assert len(lms.lineitems) == lineitems_before  # no line item of our own for a deep-linked link

    with tool.session() as session:
        stored = session.scalar(select(LtiResourceLink).where(LtiResourceLink.resource_link_id == link.id))
        assert stored is not None
        status = link_status(session, stored)
        assert (status.students, status.synced, status.pending, status.failing) == (1, 1, 0, 0)
        # "Send all grades again": one more post of the same score, then quiet again.
        assert resend_all(session, [stored.id]) == 1
    assert tool.app is not None
    tool.app.state.lti_passback.nudge()
    wait_for(lambda: len(lms.scores_for(person.sub)) == 3, what="the re-sent score")
    time.sleep(1.5)
    assert [s["scoreGiven"] for s in lms.scores_for(person.sub)] == [0.5, 1.0, 1.0]


def test_line_item_is_created_once_for_a_link_without_one(tool: GradaxServer, lms: FakePlatform) -> None:
    link = lms.add_link("Hand-made link", {"gradax_problem": PID, "gradax_points": "10"})
    students = [student_launch(tool, lms, link) for _ in range(2)]
    before = len(lms.lineitems)
    for i, s in enumerate(students):
        graded_submit(tool, s.sub, 0.5 + 0.5 * i)
    wait_for(lambda: all(lms.scores_for(s.sub) for s in students), what="both scores")
    made = [i for i in lms.lineitems.values() if i.get("resourceLinkId") == link.id]
    assert len(lms.lineitems) == before + 1 and len(made) == 1
    assert made[0]["scoreMaximum"] == 10.0 and made[0]["tag"] == "gradax"
    assert [lms.scores_for(s.sub)[0]["scoreGiven"] for s in students] == [5.0, 10.0]
    assert {lms.scores_for(s.sub)[0]["lineitem"] for s in students} == {made[0]["id"].rsplit("/", 1)[1]}


def test_platform_down_during_passback_retries_and_loses_nothing_across_a_restart(tool: GradaxServer,
                                                                                  lms: FakePlatform) -> None:
    link = lms.add_link("Down link", {"gradax_problem": PID}, with_lineitem=True)
    person = student_launch(tool, lms, link)
    lms.down = True
    try:
        failed_before = lms.failed_calls
        graded_submit(tool, person.sub, 0.75)
        wait_for(lambda: lms.failed_calls >= failed_before + 2, what="retries against the down platform")
        with tool.session() as session:
            row = session.scalar(select(LtiGradeSync).join(LtiResourceLink)
                                 .where(LtiResourceLink.resource_link_id == link.id))
            assert row is not None and row.tries >= 1 and row.posted_score is None
            assert "503" in (row.last_error or "")
            status = link_status(session, row.link)
            assert status.failing == 1 and "503" in (status.last_error or "")
        tool.restart()  # the server goes away while the score is still owed
        failed_at_restart = lms.failed_calls
        wait_for(lambda: lms.failed_calls > failed_at_restart, what="retries after the restart")
    finally:
        lms.down = False
    wait_for(lambda: len(lms.scores_for(person.sub)) == 1, what="the owed score after the platform is back")
    time.sleep(1.5)
    scores = lms.scores_for(person.sub)
    assert len(scores) == 1 and scores[0]["scoreGiven"] == 0.75 and scores[0]["lineitem"] == link.lineitem_id
