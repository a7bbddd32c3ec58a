"""One-line errors for users: what was wrong and what to do, exit status 2, no traceback."""
import argparse
import functools
import sys


class UserError(Exception):
    """A problem with the user's input. The message is printed as one line."""


def exit_on_user_error(main):
    """Wrap a script's main(): a UserError becomes `error: ...` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error instead of the usage block."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
