"""A tiny echo server/client run inside test network namespaces (``ip netns exec``).

serve PROTO PORT [BIND]     print "ready", answer each message with "<peer ip> <message>"
send PROTO HOST PORT MSG    print the answer
"""

from __future__ import annotations

import socket
import sys


def family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve(proto: str, port: int, bind: str) -> None:
    stype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family(bind), stype)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(bind) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    if proto == "tcp":
        s.listen(64)
    print("ready", flush=True)
    while True:
        if proto == "tcp":
            c, peer = s.accept()
            with c:
                data = c.recv(4096)
                c.sendall(f"{peer[0]} ".encode() + data)
        else:
            data, peer = s.recvfrom(4096)
            s.sendto(f"{peer[0]} ".encode() + data, peer)


def send(proto: str, host: str, port: int, msg: str) -> None:
    stype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family(host), stype) as s:
        s.settimeout(5)
        s.connect((host, port))
        s.send(msg.encode())
        print(s.recv(4096).decode().removeprefix("::ffff:"), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "::")
    else:
        send(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
