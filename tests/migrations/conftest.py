"""Migration test fixtures: the problem bank (read-only, shared)."""

from __future__ import annotations

import pytest
from api.helpers import ROOT_PROBLEMS

from graders.problem import ProblemBank


@pytest.fixture(scope="session")
def bank() -> ProblemBank:
    return ProblemBank(ROOT_PROBLEMS)
