"""A passive reader of the loopback interface (AF_PACKET; needs root or CAP_NET_RAW):
what an attacker on the network between driver and executors sees."""
from __future__ import annotations

import socket
import struct
import threading
from collections import defaultdict

_ETH_IPV4 = 0x0800


def can_sniff() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003)).close()
        return True
    except (PermissionError, AttributeError, OSError):
        return False


class LoopbackSniffer:
    """Every TCP payload on lo, per (source port, destination port) flow, in order."""

    def __init__(self):
        self.flows: dict[tuple[int, int], bytearray] = defaultdict(bytearray)
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "LoopbackSniffer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            if address[2] == socket.PACKET_OUTGOING:  # lo shows each packet twice
                continue
            self._take(frame)

    def _take(self, frame: bytes) -> None:
        if len(frame) < 14 + 20 or struct.unpack("!H", frame[12:14])[0] != _ETH_IPV4:
            return
        ip = frame[14:]
        header, protocol = (ip[0] & 0x0F) * 4, ip[9]
        total = struct.unpack("!H", ip[2:4])[0]
        if protocol != 6:
            return
        tcp = ip[header:total]
        source, destination = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            with self._lock:
                self.flows[(source, destination)].extend(payload)

    def snapshot(self) -> dict[tuple[int, int], bytes]:
        with self._lock:
            return {flow: bytes(data) for flow, data in self.flows.items()}

    def contains(self, needle: bytes) -> bool:
        return any(needle in data for data in self.snapshot().values())

    def ports_receiving(self, prefixes: tuple[bytes, ...]) -> set[int]:
        """Destination ports of flows that start with one of `prefixes`."""
        return {dst for (_, dst), data in self.snapshot().items() if data.startswith(prefixes)}

    def first_payloads_to(self, port: int) -> list[bytes]:
        return [data for (_, dst), data in self.snapshot().items() if dst == port]
