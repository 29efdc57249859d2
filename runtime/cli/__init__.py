"""``crid-runtime``, the runc-compatible command line: the per-call client (client.py, which
imports next to nothing), the long-lived runtime server and its forked workers (server.py,
worker.py), the commands themselves (commands.py) and terminal proxying (tty.py). Kept empty:
the client's start-up pays for every import made here."""

# The commands read it too; here rather than in client.py so that they need not import the
# client (which imports them lazily): no import circle.
DEFAULT_ROOT = "/run/crid-runtime"
