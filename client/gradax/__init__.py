"""gradax for students: practise gradax problems from your own editor or notebook.

`gradax login / pull / test / submit` on the command line (`gradax.cli`) and `gradax.client.check` in Jupyter or
Colab. Installs alone as the `gradax-client` distribution (client/pyproject.toml), without the server's
dependencies; the server distribution includes it.
"""

__version__ = "0.1.0"
