"""What runs inside the sandbox, next to untrusted code: the harness, the zygote, seccomp, namespaces, probes.

Only this package and the wire format (graders/wire.py) are bound into the sandbox. Nothing here imports
the parent side of `graders` (tests/unit/test_child_imports.py holds that).
"""
