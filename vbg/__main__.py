"""`python -m vbg` and the `vbg` command."""

import os
import signal
import sys


def _quiet_exit(signum, frame):
    # Ctrl-C before the CLI has set up its own handling: nothing is open yet, so leave at once and
    # quietly (the default handler would print a traceback from inside whatever was being imported)
    os._exit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGINT, _quiet_exit)
    from vbg.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
