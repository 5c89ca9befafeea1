class VbgError(Exception):
    """A problem the user can fix. Its message is one line: what went wrong and what to do.

    The CLI prints it without a traceback and exits with `exit_code`.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def brief(error: BaseException | str, limit: int = 160) -> str:
    """A library's error message for a one-line report: its first line, its first sentence when that is
    long, never cut mid-word (a cut ends with '…')."""
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    text = text.splitlines()[0].strip()
    if len(text) > limit and ". " in text[:limit]:
        text = text[:text.rindex(". ", 0, limit) + 1]
    if len(text) > limit:
        text = text[:text.rfind(" ", 0, limit - 1)].rstrip(" ,;:") + "…"
    return text
