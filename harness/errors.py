"""User-facing errors: the CLI prints them as one line and exits non-zero (no traceback)."""


class UserError(Exception):
    """Bad input from the user (flag, file, field, data). The message names what is wrong and where."""


class DataMissing(UserError):
    """A benchmark data file is not available locally (and the hub could not be used)."""
