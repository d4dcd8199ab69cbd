"""LTI 1.3 launches against the fake platform: what is accepted, and every way a launch is refused."""

from __future__ import annotations

import secrets
import time

import httpx
from joserfc.jwk import RSAKey
from sqlalchemy import select

from app.lti.models import LtiContext, LtiResourceLink, LtiUserLink
from app.models import User
from lti.conftest import Browser, GradaxServer
from lti.fake_platform import LTI, FakePlatform

PID = "nnx-module-basics"


def _student(lms: FakePlatform, role: str = "Learner") -> tuple[str, object]:
    sub = "u-" + secrets.token_hex(4)
    return sub, lms.person(sub, f"Ada {sub}", f"{sub}@uni.test", role)


def test_launch_signs_the_student_in_and_opens_the_problem(tool: GradaxServer, lms: FakePlatform,
                                                           user_agent: Browser) -> None:
    sub, person = _student(lms)
    link = lms.add_link("Module basics", {"gradax_problem": PID})
    r = user_agent.launch(lms.login_params(person, link=link))  # type: ignore[arg-type]
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/problems/{PID}"
    page = user_agent.http.get(r.headers["location"])
    assert page.status_code == 200
    with tool.session() as session:
        account = session.scalar(select(LtiUserLink).where(LtiUserLink.sub == sub))
        assert account is not None and account.email == f"{sub}@uni.test"
        user = session.get(User, account.user_id)
        assert user is not None and user.role == "student"
        assert f'data-testid="username">{user.username}<' in page.text  # logged in as the linked account
        context = session.scalar(select(LtiContext).where(LtiContext.context_id == lms.context_id))
        assert context is not None and context.title == lms.context_title
        assert context.memberships_url == f"{lms.base}/memberships/{lms.context_id}"
        stored = session.scalar(select(LtiResourceLink).where(LtiResourceLink.resource_link_id == link.id))
        assert stored is not None and (stored.target_kind, stored.target) == ("problem", PID)
        assert stored.lineitems_url == f"{lms.base}/lineitems"

    # A second launch of the same person is the same account, not a new one.
    again = Browser(tool.url)
    try:
        assert again.launch(lms.login_params(person, link=link)).status_code == 303  # type: ignore[arg-type]
    finally:
        again.close()
    with tool.session() as session:
        assert len(session.scalars(select(LtiUserLink).where(LtiUserLink.sub == sub)).all()) == 1


def _register_typing(tool: GradaxServer, username: str, password: str, email: str) -> int:
    """An account with a password, registered with an email typed into the form (unverified); its id."""
    r = httpx.post(f"{tool.url}/api/v1/auth/register", json={"username": username, "password": password,
                                                             "email": email})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _launch_from_a_second_platform(tool: GradaxServer, sub: str, email: str) -> None:
    from lti.conftest import register

    other = FakePlatform(tool.url).start()
    try:
        register(tool, other)
        twin = other.person(sub, "Ada Elsewhere", email, "Learner")
        b2 = Browser(tool.url)
        assert b2.launch(other.login_params(twin, link=other.add_link("x", {"gradax_problem": PID}))).status_code == 303
        b2.close()
    finally:
        other.stop()


def test_the_same_email_from_another_platform_is_the_same_account(tool: GradaxServer, lms: FakePlatform,
                                                                   user_agent: Browser) -> None:

    sub, person = _student(lms)
    link = lms.add_link("Module basics", {"gradax_problem": PID})
    assert user_agent.launch(lms.login_params(person, link=link)).status_code == 303  # type: ignore[arg-type]
    _launch_from_a_second_platform(tool, "other-" + sub, f"{sub}@uni.test")
    with tool.session() as session:
        links = session.scalars(select(LtiUserLink).where(LtiUserLink.email == f"{sub}@uni.test"))
        ids = {row.user_id for row in links}
        assert len(ids) == 1


def test_an_email_typed_at_registration_does_not_take_over_the_lms_identity(tool: GradaxServer, lms: FakePlatform,
                                                                           user_agent: Browser) -> None:
    """Mallory registers here, with a password, under the email of an LMS instructor (anyone can type any
    address). The instructor's launch signs in an account of its own with the email verified, never Mallory's:
    linked, Mallory would log in with her password as the instructor and read and submit as them."""
    sub = "t-" + secrets.token_hex(4)
    email = f"{sub}@uni.test"
    mallory_id = _register_typing(tool, "mallory-" + sub[2:], "correct horse battery", email)
    person = lms.person(sub, "Grace Hopper", email, "Instructor")
    link = lms.add_link("Module basics", {"gradax_problem": PID})
    r = user_agent.launch(lms.login_params(person, link=link))  # type: ignore[arg-type]
    assert (r.status_code, r.headers["location"]) == (303, "/lti/link-account")
    with tool.session() as session:
        row = session.scalar(select(LtiUserLink).where(LtiUserLink.sub == sub))
        assert row is not None and row.user_id != mallory_id
        assert not session.scalars(select(LtiUserLink).where(LtiUserLink.user_id == mallory_id)).all()
    # Asked whether the account that typed her address is hers, Grace says no: the address moves to her account.
    r = user_agent.http.post("/lti/link-account", data={"choice": "new",
                                                        "csrf_token": user_agent.csrf("/lti/link-account")})
    assert (r.status_code, r.headers["location"]) == (303, f"/problems/{PID}")
    with tool.session() as session:
        account, mallory = session.get(User, row.user_id), session.get(User, mallory_id)
        assert account is not None and mallory is not None
        assert (account.email, account.email_verified) == (email, True)
        assert mallory.email is None  # the verified claim took the address from the account that typed it
    # A second platform launching the same person, by email, finds the verified account.
    _launch_from_a_second_platform(tool, "other-" + sub, email)
    with tool.session() as session:
        assert {r.user_id for r in session.scalars(select(LtiUserLink).where(LtiUserLink.email == email))} \
            == {account.id}


def test_a_student_who_registered_before_moves_the_lms_sign_in_to_that_account_with_its_password(
        tool: GradaxServer, lms: FakePlatform, user_agent: Browser) -> None:
    """Ada registered here with a password and her email before her course moved to the LMS. Her first launch
    signs in a new account and asks whether the earlier one is hers: its password (not a wrong one) moves the
    LMS sign-in there, with her earlier work; later launches go straight to it. Someone else declines."""
    sub = "s-" + secrets.token_hex(4)
    email, username = f"{sub}@uni.test", "ada-" + sub[2:]
    earlier_id = _register_typing(tool, username, "ada's own password", email)
    person = lms.person(sub, "Ada Lovelace", email, "Learner")
    link = lms.add_link("Module basics", {"gradax_problem": PID})
    r = user_agent.launch(lms.login_params(person, link=link))  # type: ignore[arg-type]
    assert (r.status_code, r.headers["location"]) == (303, "/lti/link-account"), r.text
    page = user_agent.http.get("/lti/link-account")
    assert page.status_code == 200 and f'data-testid="holder">{username}<' in page.text
    token = user_agent.csrf("/lti/link-account")
    wrong = user_agent.http.post("/lti/link-account", data={"password": "a guess", "csrf_token": token})
    assert wrong.status_code == 401 and f"That is not the password of {username}." in wrong.text
    with tool.session() as session:
        new_id = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub))
        assert new_id is not None and new_id != earlier_id
    right = user_agent.http.post("/lti/link-account", data={"password": "ada's own password", "csrf_token": token})
    assert (right.status_code, right.headers["location"]) == (303, f"/problems/{PID}"), right.text
    assert f'data-testid="username">{username}<' in user_agent.http.get(f"/problems/{PID}").text
    with tool.session() as session:
        assert session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub)) == earlier_id
        earlier = session.get(User, earlier_id)
        assert earlier is not None and (earlier.email, earlier.email_verified) == (email, True)
        assert session.get(User, new_id) is None  # the launch's empty account is gone
    again = Browser(tool.url)
    try:
        r = again.launch(lms.login_params(person, link=link))  # type: ignore[arg-type]
        assert (r.status_code, r.headers["location"]) == (303, f"/problems/{PID}")
    finally:
        again.close()

    # Someone whose email another account typed, and who says it is not theirs, keeps the new account.
    sub2 = "s-" + secrets.token_hex(4)
    typist_id = _register_typing(tool, "typist-" + sub2[2:], "not grace's password", f"{sub2}@uni.test")
    grace = lms.person(sub2, "Grace Hopper", f"{sub2}@uni.test", "Learner")
    b = Browser(tool.url)
    try:
        assert b.launch(lms.login_params(grace, link=link)).headers["location"] == "/lti/link-account"  # type: ignore[arg-type]
        kept = b.http.post("/lti/link-account", data={"choice": "new", "csrf_token": b.csrf("/lti/link-account")})
        assert (kept.status_code, kept.headers["location"]) == (303, f"/problems/{PID}")
        assert b.http.get("/lti/link-account").status_code == 303  # the offer is gone
    finally:
        b.close()
    with tool.session() as session:
        row = session.scalar(select(LtiUserLink).where(LtiUserLink.sub == sub2))
        assert row is not None and row.user_id != typist_id
        kept_account = session.get(User, row.user_id)
        assert kept_account is not None
        assert (kept_account.email, kept_account.email_verified) == (f"{sub2}@uni.test", True)


def test_an_account_a_roster_sync_made_is_offered_the_earlier_account_at_the_first_launch(
        tool: GradaxServer, lms: FakePlatform, user_agent: Browser) -> None:
    """A roster sync (Names and Roles) makes the LMS's account before the person ever launches, and cannot take
    an address another account typed: her first launch still asks, and the earlier account's password moves the
    sync's course membership to it."""
    from app.lti.models import LtiPlatform
    from app.lti.roster import sync_roster
    from app.models import CourseMember

    sub = "n-" + secrets.token_hex(4)
    email, username = f"{sub}@uni.test", "nia-" + sub[2:]
    earlier_id = _register_typing(tool, username, "nia's own password", email)
    person = lms.person(sub, "Nia Early", email, "Learner")
    assert tool.app is not None
    with tool.session() as session:
        platform_id = session.scalar(select(LtiPlatform.id).where(LtiPlatform.issuer == lms.issuer))
        context = session.scalar(select(LtiContext).where(LtiContext.platform_id == platform_id,
                                                          LtiContext.context_id == lms.context_id))
        if context is None:
            context = LtiContext(platform_id=platform_id, context_id=lms.context_id)
            session.add(context)
        context.course_id, context.memberships_url = "example", f"{lms.base}/memberships/{lms.context_id}"
        session.commit()
        sync_roster(session, tool.app.state.lti_roster.services, context)
        session.commit()
        synced_id = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub))
        assert synced_id is not None and synced_id != earlier_id
        assert session.get(CourseMember, ("example", synced_id)) is not None
    r = user_agent.launch(lms.login_params(person, link=lms.add_link("Module basics", {"gradax_problem": PID})))  # type: ignore[arg-type]
    assert (r.status_code, r.headers["location"]) == (303, "/lti/link-account"), r.text
    r = user_agent.http.post("/lti/link-account", data={"password": "nia's own password",
                                                        "csrf_token": user_agent.csrf("/lti/link-account")})
    assert r.status_code == 303, r.text
    with tool.session() as session:
        assert session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == sub)) == earlier_id
        member = session.get(CourseMember, ("example", earlier_id))
        assert member is not None and (member.role, member.source) == ("student", "lti")
        assert session.get(User, synced_id) is None


def test_a_new_lms_account_takes_roster_invitations_by_email_not_by_the_username_gradax_made_up(
        tool: GradaxServer) -> None:
    """The roster invites the username `ada-...` (someone who will register) and the email of Bea. An LMS user
    whose email is ada-...@elsewhere.test gets the username `ada-...` made from it, but is not that invitation's
    person; Bea, arriving from the LMS with the invited email, is enrolled."""
    from app.models import CourseInvitation, CourseMember
    from app.services.courses import import_roster

    tag = secrets.token_hex(3)
    with tool.session() as session:
        prof = session.scalar(select(User).where(User.role == "admin")) or User(username="prof-" + tag,
                                                                                  password_hash="x")
        session.add(prof)
        session.commit()
        result = import_roster(session, course_id="example", text=f"username,email\nada-{tag},\n,bea-{tag}@uni.test\n",
                               added_by=prof)
        assert result.invited == [f"ada-{tag}", f"bea-{tag}@uni.test"], result
    from lti.conftest import register

    own = FakePlatform(tool.url, context_id="ctx-" + tag).start()  # a course of its own, connected to nothing
    try:
        register(tool, own)
        link = own.add_link("Module basics", {"gradax_problem": PID})
        for sub, email in ((f"a-{tag}", f"ada-{tag}@elsewhere.test"), (f"b-{tag}", f"bea-{tag}@uni.test")):
            b = Browser(tool.url)
            person = own.person(sub, "Someone", email, "Learner")
            assert b.launch(own.login_params(person, link=link)).status_code == 303  # type: ignore[arg-type]
            b.close()
    finally:
        own.stop()
    with tool.session() as session:
        ada_uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == f"a-{tag}"))
        bea_uid = session.scalar(select(LtiUserLink.user_id).where(LtiUserLink.sub == f"b-{tag}"))
        ada = session.get(User, ada_uid)
        assert ada is not None and ada.username == f"ada-{tag}"  # made up from the email
        assert session.get(CourseMember, ("example", ada_uid)) is None
        assert session.get(CourseMember, ("example", bea_uid)) is not None
        pending = session.scalars(select(CourseInvitation.username).where(CourseInvitation.course_id == "example"))
        assert f"ada-{tag}" in set(pending)


def _refused(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert words in r.text, r.text


def test_bad_signature_is_refused(lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    forger = RSAKey.generate_key(2048, private=True)
    r = user_agent.launch(lms.login_params(person, link=lms.add_link("x", {"gradax_problem": PID}),  # type: ignore[arg-type]
                                        sign_with=forger))
    _refused(r, 403, "bad signature")
    assert 'data-testid="username"' not in user_agent.http.get("/").text  # nobody is signed in


def test_wrong_audience_is_refused(lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    r = user_agent.launch(lms.login_params(person, link=lms.add_link("x", {"gradax_problem": PID}),  # type: ignore[arg-type]
                                        aud="someone-else"))
    _refused(r, 403, "wrong audience")


def test_several_audiences_need_our_client_id_as_azp(lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    link = lms.add_link("x", {"gradax_problem": PID})
    r = user_agent.launch(lms.login_params(person, link=link, aud=[lms.client_id, "other"]))  # type: ignore[arg-type]
    _refused(r, 403, "azp")
    r = user_agent.launch(lms.login_params(person, link=link, aud=[lms.client_id, "other"],  # type: ignore[arg-type]
                                        azp="other"))
    _refused(r, 403, "azp")
    r = user_agent.launch(lms.login_params(person, link=link, aud=[lms.client_id, "other"],  # type: ignore[arg-type]
                                        azp=lms.client_id))
    assert r.status_code == 303, r.text


def test_replayed_launch_is_refused(tool: GradaxServer, lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    link = lms.add_link("x", {"gradax_problem": PID})
    action, fields = user_agent.authorize(user_agent.login(lms.login_params(person, link=link)))  # type: ignore[arg-type]
    assert user_agent.post_launch(action, fields).status_code == 303
    # The same id_token and state again (a captured form replayed): the state is spent.
    _refused(user_agent.post_launch(action, fields), 403, "already used")
    # The same id_token with a fresh state of the attacker's own: its nonce belongs to the first login.
    attacker = Browser(tool.url)
    try:
        _, fresh = attacker.authorize(attacker.login(lms.login_params(person, link=link)))  # type: ignore[arg-type]
        _refused(attacker.post_launch(action, {"id_token": fields["id_token"], "state": fresh["state"]}), 403,
                 "wrong nonce")
    finally:
        attacker.close()


def test_expired_token_is_refused(lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    now = int(time.time())
    r = user_agent.launch(lms.login_params(person, link=lms.add_link("x", {"gradax_problem": PID}),  # type: ignore[arg-type]
                                        iat=now - 3600, exp=now - 600))
    _refused(r, 403, "expired")


def test_unknown_deployment_is_refused(lms: FakePlatform, user_agent: Browser) -> None:
    _, person = _student(lms)
    link = lms.add_link("x", {"gradax_problem": PID})
    r = user_agent.launch(lms.login_params(person, link=link, **{LTI + "deployment_id": "rogue-deployment"}))  # type: ignore[arg-type]
    _refused(r, 403, "unknown deployment")
    # Refused already at login when the platform names the deployment there.
    params = lms.login_params(person, link=link)  # type: ignore[arg-type]
    params["lti_deployment_id"] = "rogue-deployment"
    _refused(user_agent.login(params), 403, "not registered")


def test_launch_without_the_login_cookie_is_refused(lms: FakePlatform, user_agent: Browser) -> None:
    """Login CSRF: an id_token obtained by someone else's browser cannot sign this browser in."""
    _, person = _student(lms)
    action, fields = user_agent.authorize(user_agent.login(lms.login_params(  # type: ignore[arg-type]
        person, link=lms.add_link("x", {"gradax_problem": PID}))))
    _refused(user_agent.post_launch(action, fields, with_state_cookie=False), 403, "did not start this launch")


def test_unknown_issuer_and_missing_fields_are_refused_at_login(user_agent: Browser) -> None:
    _refused(user_agent.login({"iss": "https://evil.test", "login_hint": "x", "target_link_uri": "https://t/lti/launch"}),
             403, "no LTI platform is registered")
    _refused(user_agent.login({"iss": "https://evil.test"}), 400, "needs iss, login_hint and target_link_uri")
    _refused(user_agent.http.post("/lti/launch", data={"id_token": "x.y.z", "state": "nope"}), 403,
             "unknown login state")


def test_platform_keys_are_cached_and_refetched_for_a_new_kid(tool: GradaxServer, lms: FakePlatform,
                                                              user_agent: Browser) -> None:
    assert tool.app is not None
    cache = tool.app.state.lti_platform_keys
    _, person = _student(lms)
    link = lms.add_link("x", {"gradax_problem": PID})
    assert user_agent.launch(lms.login_params(person, link=link)).status_code == 303  # type: ignore[arg-type]
    fetched = cache.fetches
    assert user_agent.launch(lms.login_params(person, link=link)).status_code == 303  # type: ignore[arg-type]
    assert cache.fetches == fetched  # the second launch used the cached set


def test_old_login_states_are_dropped(tool: GradaxServer, lms: FakePlatform, user_agent: Browser) -> None:
    from datetime import timedelta

    from app.lti.models import LtiLoginState, LtiPlatform
    from app.models import utcnow

    with tool.session() as session:
        platform_id = session.scalar(select(LtiPlatform.id).where(LtiPlatform.client_id == lms.client_id))
        old = utcnow() - timedelta(days=2)
        session.add(LtiLoginState(state="old-" + secrets.token_hex(4), nonce="n", platform_id=platform_id,
                                  created_at=old, expires_at=old + timedelta(minutes=10)))
        session.commit()
    _, person = _student(lms)
    link = lms.add_link("x", {"gradax_problem": PID})
    assert user_agent.login(lms.login_params(person, link=link)).status_code == 302  # type: ignore[arg-type]
    with tool.session() as session:
        states = session.scalars(select(LtiLoginState.state)).all()
        assert states and not any(s.startswith("old-") for s in states)
