"""Every frame crossing the lab's bridge, to a file: run in the bridge's namespace
(`python lab_sniffer.py OUT SECONDS`), it reads all the namespace's interfaces
(the bridge's ports) with an AF_PACKET socket until SIGTERM or SECONDS pass."""
from __future__ import annotations

import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003


def main() -> None:
    out, seconds = sys.argv[1], float(sys.argv[2])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniffer.settimeout(0.2)
    end = time.monotonic() + seconds
    with open(out, "wb") as capture:
        print("sniffing", flush=True)
        while not stop and time.monotonic() < end:
            try:
                frame = sniffer.recv(65535)
            except (socket.timeout, InterruptedError):
                continue
            capture.write(len(frame).to_bytes(4, "big") + frame)


if __name__ == "__main__":
    main()
