"""The one exception type for user mistakes: the CLI prints its message and exits non-zero."""


class UserError(Exception):
    """A problem the user can fix (a bad spec, missing data, bad SQL). Printed as one line, no traceback."""


class SpecError(UserError):
    """A spec or an override that does not validate. The message names the field and what is allowed."""


class DataError(UserError):
    """A data set that cannot be loaded. The message says which command or setting fixes it."""


class ResultsError(UserError):
    """A results folder that cannot be written or read, or a query DuckDB rejects."""


class Interrupted(Exception):
    """A sweep stopped before its end (Ctrl-C); its state is saved and `sweep resume` continues it."""


def first_line(error: BaseException) -> str:
    """An exception's first line of text (its type's name when it has none): what a one-line error shows."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
