"""User-facing errors: the message is one line that says what is wrong and how to fix it.

The CLI prints such an error without a traceback (exit status 2); any other exception is a bug
and keeps its traceback.
"""


class WildcatError(Exception):
    """Base class of the errors a user can fix (bad config, missing data or weights, ...)."""


class WildcatWarning(UserWarning):
    """Base class of the warnings a user should read (the CLI prints each as one line)."""
