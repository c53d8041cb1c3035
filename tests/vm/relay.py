#!/usr/bin/env python3
"""One guest connection to a host loopback port, for QEMU's `guestfwd=…-cmd:` (tests/vm/goosebit.sh).

QEMU's user network runs this once per TCP connection the guest opens to the guestfwd address,
with that connection as stdin, stdout and stderr. It connects to 127.0.0.1 at the port written
in PORT-FILE (read now, so a server restarted on another port is reached without rebooting the
guest) and copies bytes both ways until both sides have closed; a half-close is passed on.
Nothing but the copied bytes may reach the guest, so errors go to LOG-FILE, never to stderr.

Usage: relay.py PORT-FILE LOG-FILE
"""

import os
import selectors
import socket
import sys
import time


def main():
    port_file, log_file = sys.argv[1], sys.argv[2]
    # stderr is the guest's connection: keep tracebacks out of it.
    log = open(log_file, "a", encoding="utf-8")
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    guest = socket.socket(fileno=os.dup(0))
    try:
        with open(port_file, encoding="ascii") as f:
            port = int(f.read().strip())
        host = socket.create_connection(("127.0.0.1", port), timeout=10)
    except (OSError, ValueError) as err:
        log.write(f"{time.strftime('%H:%M:%S')} relay: cannot reach the host side: {err}\n")
        guest.close()
        return 1
    host.settimeout(None)
    sel = selectors.DefaultSelector()
    # source -> destination; a source that reached its end is unregistered.
    peer = {guest: host, host: guest}
    for s in peer:
        sel.register(s, selectors.EVENT_READ)
    open_sides = 2
    while open_sides:
        for key, _ in sel.select():
            src = key.fileobj
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    peer[src].sendall(data)
                    continue
                except OSError:
                    pass
            sel.unregister(src)
            open_sides -= 1
            try:
                peer[src].shutdown(socket.SHUT_WR)
            except OSError:
                pass
    guest.close()
    host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
