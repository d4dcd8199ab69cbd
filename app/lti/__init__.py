"""LTI 1.3 / LTI Advantage tool: gradax inside Canvas, Moodle and other LMSs (docs/lti.md).

A launch (launch.py) signs the user in (accounts.py) and opens the linked problem or assignment (links.py,
enrolment.py); deep linking (deep_linking.py) lets instructors link gradax content; grade passback
(passback.py, scores.py) posts every change of a student's effective score through the platform's services
(services.py); the tool's keys (keys.py) sign what we send. Routes in routes.py, CLI in cli.py.
"""
