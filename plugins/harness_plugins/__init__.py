"""The built-in plugins (import name ``harness_plugins``).

Each module registers through the ``harness`` entry-point group in pyproject.toml,
exactly as a third-party distribution would; the core never imports them by name.
"""
