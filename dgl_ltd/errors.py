"""Exceptions with one-line messages meant for users (the CLI prints them and exits with code 2)."""


class UserInputError(ValueError):
    """Bad input: the message names the problem and the fix, in one line."""
