"""LTI 1.3 / LTI Advantage tool: gradax inside Canvas, Moodle and other LMSs (docs/lti.md).

A launch (launch.py) signs the user in (accounts.py), enrols them (enrolment.py) and opens the linked problem,
or the course page of a linked assignment (links.py); deep linking (deep_linking.py) lets instructors link
gradax content; grade passback (passback.py, scores.py) posts every change of a student's effective score
through the platform's services (services.py); roster.py pulls the LMS roster; the tool's keys (keys.py) sign
what we send. Routes in routes.py, CLI in cli.py.
"""
