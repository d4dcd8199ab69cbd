#!/usr/bin/env bash
# For `make test` on a cgroup v2 host (any systemd distribution, Debian 12 included), as root: print a
# parent cgroup for the test run's sandboxes (to be GRADAX_CGROUP_PARENT), creating it if needed.
# Why: the test run shares its cgroup with make, pytest and its workers, and cgroup v2 lets a group with
# processes give no controllers to child groups, so the sandboxes cannot live below the run's own cgroup
# (graders/cgroup.py would refuse, saying so). An empty group just below the root can: the root may hold
# processes. Prints nothing on cgroup v1 or hybrid hosts (the CI machine), when not root, or when
# GRADAX_CGROUP_PARENT is already set.
set -euo pipefail
root=/sys/fs/cgroup
if [ -n "${GRADAX_CGROUP_PARENT:-}" ]; then echo "$GRADAX_CGROUP_PARENT"; exit 0; fi
[ -f "$root/cgroup.controllers" ] && [ "$(id -u)" = 0 ] || exit 0
mkdir -p "$root/gradax-tests" 2>/dev/null && echo /gradax-tests || true
