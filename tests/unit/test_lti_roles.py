"""The course role a launch's roles claim grants: context roles only, in every spelling platforms send."""

from __future__ import annotations

import pytest

from app.lti.accounts import course_role
from app.models import CourseRole

M = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"


@pytest.mark.parametrize(("roles", "expected"), [
    ([f"{M}#Learner"], CourseRole.STUDENT),
    ([f"{M}#Instructor"], CourseRole.INSTRUCTOR),
    ([f"{M}/Instructor#TeachingAssistant"], CourseRole.TA),
    ([f"{M}#Instructor", f"{M}/Instructor#TeachingAssistant"], CourseRole.TA),
    ([f"{M}#Administrator"], CourseRole.INSTRUCTOR),
    ([f"{M}#ContentDeveloper"], CourseRole.INSTRUCTOR),
    (["Instructor"], CourseRole.INSTRUCTOR),  # LTI 1.3's simple names are context roles
    (["Learner"], CourseRole.STUDENT),
    (["urn:lti:role:ims/lis/Instructor"], CourseRole.INSTRUCTOR),  # LTI 1.1 URNs
    (["urn:lti:role:ims/lis/Instructor/TeachingAssistant"], CourseRole.TA),
    ([M.replace("http:", "https:") + "#Instructor"], CourseRole.INSTRUCTOR),
    ([], CourseRole.STUDENT),
    # Who someone is elsewhere at the school grants nothing in this course (Canvas sends these beside the
    # context roles): a graduate student who teaches another course is a Learner here.
    ([f"{INSTITUTION}#Instructor", f"{M}#Learner"], CourseRole.STUDENT),
    ([f"{INSTITUTION}#Administrator", f"{INSTITUTION}#Faculty", f"{M}#Learner"], CourseRole.STUDENT),
    ([f"{SYSTEM}#Administrator", f"{M}#Learner"], CourseRole.STUDENT),
    (["urn:lti:instrole:ims/lis/Instructor", "urn:lti:sysrole:ims/lis/Administrator"], CourseRole.STUDENT),
    ([f"{INSTITUTION}#Instructor", f"{M}#Instructor"], CourseRole.INSTRUCTOR),
    (["http://example.org/roles#Instructor"], CourseRole.STUDENT),  # someone else's vocabulary
])
def test_only_context_roles_grant_a_course_role(roles: list[str], expected: CourseRole) -> None:
    assert course_role(roles) == expected
