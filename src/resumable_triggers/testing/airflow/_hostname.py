"""``[core] hostname_callable`` of a deployment's Airflow processes: the instance's own name.

Airflow imports this in every process it starts (scheduler, triggerer, task runner...), so it imports
nothing but the standard library, and its package imports nothing eagerly (see ``_lazy``).
"""

from __future__ import annotations

import os
import socket

# Where the instance's hostname reaches `hostname()` in its process (the environment survives there;
# only /proc/<pid>/environ is overwritten by setproctitle).
HOSTNAME_ENV = "RESUMABLE_TRIGGERS_DEPLOYMENT_HOSTNAME"


def hostname() -> str:
    """The instance's hostname (a loopback address) if the deployment gave it one, else the FQDN."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()
