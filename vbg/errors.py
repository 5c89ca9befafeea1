class VbgError(Exception):
    """A problem the user can fix. Its message is one line: what went wrong and what to do.

    The CLI prints it without a traceback and exits with `exit_code`.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
