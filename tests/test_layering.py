"""The seams of ARCHITECTURE.md §2 beyond what `make lint` (lint-imports) checks: importing the
contracts loads no backend library."""

from __future__ import annotations

import subprocess
import sys


def test_the_contracts_load_no_backend_library() -> None:
    script = (
        "import sys, streamcalc.state.base, streamcalc.log.base, streamcalc.catalog.base\n"
        "import streamcalc.backends\n"
        "loaded = [m for m in ('lmdb', 'sqlite3') if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
