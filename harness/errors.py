"""The one exception type that the CLI turns into a one-line message."""


class SlmbenchError(Exception):
    """A user-facing error: bad input, missing data or a refused operation.

    The CLI prints ``slmbench: error: <message>`` and exits with status 2, so the
    message must name the culprit (file, row, argument) on a single line.
    """
