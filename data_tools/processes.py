"""Whether a process still runs: how writers tell a temporary file of a live writer from one
a killed process left behind (event-store partials, checkpoint temporaries)."""
from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True when process pid exists (this process included; one of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
