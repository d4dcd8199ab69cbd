"""`gradax new`: a problem file and a reference solution that `gradax check` accepts as they are."""

from __future__ import annotations

import re
from pathlib import Path

from graders.problem import ID_PATTERN, reference_path_for

TEMPLATE = '''id: {id}
title: "{title}"
track: drafts
order: 100
difficulty: easy
statement: |
  ## Why it matters
  Say what this exercise teaches and where it is used.

  ## The API
  Name the functions and classes a student needs, with a short example.

  ## Problem
  Write `{function}(seed, x)`. `seed` arrives as a Python float: cast it with `int(seed)`.
  Return `x * 2`.
function: {function}
args:
  - name: seed
    kind: scalar
  - name: x
    kind: array
    shape: [n]
starter_code: |
  import jax.numpy as jnp

  def {function}(seed, x):
      ...
tests:
  public:
    - name: example
      args: {{seed: 0, x: [1.0, 2.0, 3.0]}}
  hidden:
    - name: empty
      args: {{seed: 1, x: []}}
  generated:
    - name: random
      count: 5
      seed: 1
      dims: {{n: [1, 16]}}
      args:
        seed: {{int_range: [0, 1000]}}
        x: {{shape: [n], random: normal}}
hints:
  - "Multiply the array by two."
known_mistakes:
  - id: identity
    message: "You returned the input unchanged; the problem asks for twice the input."
    code: |
      def {function}(seed, x):
          return x
  - id: plus-two
    message: "You added 2 instead of multiplying by 2."
    code: |
      def {function}(seed, x):
          return x + 2
  - id: squared
    message: "You squared the input instead of doubling it."
    code: |
      def {function}(seed, x):
          return x * x
'''

REFERENCE = '''"""Reference solution for {id}. Trusted code: never shown to submissions before they are solved."""

import jax.numpy as jnp


def {function}(seed, x):
    return jnp.asarray(x) * 2
'''


def scaffold(problem_id: str, problems_dir: Path, function: str | None = None) -> list[Path]:
    if not re.match(ID_PATTERN, problem_id):
        raise ValueError(f"{problem_id!r} is not a valid id (lowercase letters, digits and '-')")
    function = function or problem_id.replace("-", "_")
    if not function.isidentifier():
        raise ValueError(f"{function!r} is not a valid function name")
    problem_path = problems_dir / f"{problem_id}.yaml"
    reference_path = reference_path_for(problem_path, problem_id)
    for path in (problem_path, reference_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists")
    title = problem_id.replace("-", " ").capitalize()
    problem_path.parent.mkdir(parents=True, exist_ok=True)
    reference_path.parent.mkdir(parents=True, exist_ok=True)
    problem_path.write_text(TEMPLATE.format(id=problem_id, title=title, function=function))
    reference_path.write_text(REFERENCE.format(id=problem_id, function=function))
    return [problem_path, reference_path]
