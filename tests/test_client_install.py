"""The student client installs alone (`pip install ./client`, the gradax-client distribution) in a fresh virtualenv,
without the server's dependencies, and works there: the `gradax` student commands and the notebook helper
`gradax.client.check`, against a real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from live_server import PASSWORD, SharedServer

ROOT = Path(__file__).resolve().parent.parent
PID = "nnx-module-basics"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-grading")]

# A notebook session, as Jupyter runs it: each cell compiled under a file name of its own, registered in
# linecache (that is how IPython lets inspect find the source of what a cell defined), executed in __main__.
NOTEBOOK = '''
import json, linecache, sys, __main__

def run_cell(number, source):
    filename = f"<ipython-input-{number}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), __main__.__dict__)

run_cell(1, """
import jax
import jax.numpy as jnp
from flax import nnx
SCALE_POWER = -0.5
""")
run_cell(2, """
class Projection(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (din, dout)) * din ** SCALE_POWER)

    def __call__(self, x):
        return x @ self.kernel[...]
""")
run_cell(3, """
def my_forward(seed, x, features):
    model = Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    return model(x)
""")
run_cell(4, """
from gradax.client import check, login, module_source
login(sys.argv[1], sys.argv[2], sys.argv[3], save=False)
result = check("nnx-module-basics", my_forward)
print(json.dumps({"verdict": result.verdict, "html": result._repr_html_(), "text": repr(result),
                  "source": module_source(my_forward, "module_basics_forward")}))
""")
'''


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only `pip install ./client` (from a copy: nothing built lands in the tree)."""
    where = tmp_path_factory.mktemp("client-venv")
    venv.create(where / "venv", with_pip=True)
    python = where / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT / "client")], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return where / "venv" / "bin"


def test_the_client_installs_without_the_server_and_works(client_venv: Path, shared_server: SharedServer,
                                                          tmp_path: Path) -> None:
    python = str(client_venv / "python")
    installed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                               check=True)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "gradax-client" in names
    server_only = {"fastapi", "uvicorn", "sqlalchemy", "alembic", "celery", "redis", "psycopg", "jax", "flax"}
    assert names & server_only == set(), names & server_only
    probe = subprocess.run([python, "-c", "import gradax.client, gradax.cli, graders.compare, graders.local; "
                                          "import importlib.util as u; print(u.find_spec('app'))"],
                           capture_output=True, text=True, cwd=tmp_path)  # not the checkout: `app` is there
    assert probe.returncode == 0 and probe.stdout.strip() == "None", probe.stderr

    # the student commands from the client's own `gradax`
    shared_server.create_user("venv-student")
    env = {**os.environ, "GRADAX_CONFIG_DIR": str(tmp_path / "config")}
    folder = tmp_path / "work"
    folder.mkdir()

    def gradax(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(client_venv / "gradax"), *args], input=stdin, capture_output=True, text=True,
                              env=env, cwd=folder, timeout=600)

    assert "login" in gradax("--help").stdout
    login = gradax("login", shared_server.base, "--username", "venv-student", "--password-stdin", stdin=PASSWORD)
    assert login.returncode == 0, login.stderr
    assert gradax("pull", PID).returncode == 0
    assert (folder / f"{PID}.tests.json").exists()
    (folder / "mine.py").write_text("def module_basics_forward(seed, x, features):\n    return x\n")
    submitted = gradax("submit", PID, "mine.py", "--run")
    assert submitted.returncode == 1 and f"{PID}: wrong_answer" in submitted.stdout, submitted.stdout + submitted.stderr
    # without jax here, `gradax test` says what it needs instead of failing obscurely
    offline = gradax("test", PID, "mine.py")
    assert offline.returncode == 2 and "jax" in offline.stderr

    # the notebook helper: a function from a cell, with the class and constant it uses from other cells. The
    # notebook's own imports need jax and flax: borrow them from the server's environment, read-only.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    notebook_env = {**env, "PYTHONPATH": site}
    run = subprocess.run([python, "-c", NOTEBOOK, shared_server.base, "venv-student", PASSWORD],
                         capture_output=True, text=True, env=notebook_env, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["verdict"] == "accepted", out["text"]
    assert "Accepted" in out["html"] and "7/7 tests passed" in out["html"] and "<table>" in out["html"]
    source = out["source"]
    assert "import flax.nnx as nnx" in source and "SCALE_POWER = -0.5" in source
    assert source.index("class Projection") < source.index("def my_forward")
    assert source.rstrip().endswith("module_basics_forward = my_forward")
