"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class ReasonlabError(Exception):
    """Bad input or an unrecoverable condition the user can fix; its message names the culprit."""
