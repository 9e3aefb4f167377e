"""harness: a plugin-based benchmark harness for semantic segmentation.

Plugin authors need exactly one thing from here: ``hookimpl``.
"""

import pluggy

__version__ = "0.1.0"

#: Mark a function in a plugin module as an implementation of a ``harness_*`` hook.
hookimpl = pluggy.HookimplMarker("harness")

__all__ = ["__version__", "hookimpl"]
