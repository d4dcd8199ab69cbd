"""gradax grading engine: problem model, reference runner, sandboxed execution, comparison, reports.

This package never imports the web app (`app`), so the CLI and the queue workers can use it alone.
"""
