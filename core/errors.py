"""The one error type for a problem with the user's input, raised by any layer (a command's argument, a study
with no answer yet, a missing private Ray): `afpe` prints it as one line, without a traceback, and exits with
`USER_ERROR_EXIT_CODE`."""

from __future__ import annotations

#: The exit code of `afpe` for input it refuses (`UserError`, and a ValueError or FileNotFoundError of a command).
USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """A problem with the user's input that the user can fix: the message names it in one line."""

    exit_code = USER_ERROR_EXIT_CODE
