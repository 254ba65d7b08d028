"""Warnings for the user: one line each on stderr, each said once per process.

For input semrl can repair safely (a byte-order mark, Windows line endings, text not in Unicode NFC,
zero-width spaces) it repairs and says so, naming the file and the first line affected; what it
cannot repair is a UserError instead.
"""

from __future__ import annotations

import sys

_SAID: set[str] = set()


def warn(message: str) -> None:
    if message in _SAID:
        return
    _SAID.add(message)
    sys.stderr.write(f"semrl: warning: {message}\n")
