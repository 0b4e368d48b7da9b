"""The one error type every command raises for bad input or options."""


class CliError(Exception):
    """A user-facing error: printed as one clear line (`marketflow: error: ...`), exit status 2."""
