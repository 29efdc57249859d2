"""The CRI's streaming server (exec, attach, port-forward): `protocol/` speaks HTTP, SPDY and
WebSocket and knows nothing of crid's domain; `backend/` is the daemon's side, reaching
containers and pods."""
