"""Entry point of ``python -m mockserver`` (see :mod:`mockserver.cli`).

SIGINT and SIGTERM stop the mock with status 0 from the first line on: until the server installs its own handlers
(in :func:`mockserver.cli.serve`), a signal during the imports exits quietly instead of printing a traceback.
"""

import signal
import sys
import types


def _quiet_exit(signum: int, frame: types.FrameType | None) -> None:
    raise SystemExit(0)


signal.signal(signal.SIGINT, _quiet_exit)
signal.signal(signal.SIGTERM, _quiet_exit)

from mockserver.cli import main  # noqa: E402 (after the handlers, so a signal during this import is quiet)

sys.exit(main())
