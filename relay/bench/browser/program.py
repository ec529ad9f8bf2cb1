"""The bench's Python program, run twice by soket-bench: in Soket's page (window.soket.run, its sockets
through the relay) and under native CPython (python3 -c, straight to the servers). It measures itself
with time.perf_counter() and prints one line of JSON, so both runs are timed by the same code.

soket-bench prepends the constants: HOST and the ports of its echo server (ECHO), its source (SOURCE:
sends BULK bytes after one byte of "go", then closes) and its drain (DRAIN: reads to end of file, then
answers the count as 8 bytes, big-endian); SIZE, WARMUP, COUNT, WARMUP_BUDGET, BUDGET (seconds), BULK,
CHUNK and TIMEOUT (seconds, for every socket call, so that a stall ends the program instead of hanging).
"""

import json
import socket
import time


def connect(port):
    s = socket.create_connection((HOST, port), timeout=TIMEOUT)
    # A write then a read per round trip: Nagle would not delay it, but the servers and the relay's own
    # benchmarks turn it off too, so every path is alike.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


# Echo round trips: each one a write of SIZE bytes then a read of the whole echo.
s = connect(ECHO)
message = b"x" * SIZE
started = time.perf_counter()
for _ in range(WARMUP):
    s.sendall(message)
    recv_exactly(s, SIZE)
    if time.perf_counter() - started > WARMUP_BUDGET:
        break
round_trips_us = []
started = time.perf_counter()
while len(round_trips_us) < COUNT and time.perf_counter() - started < BUDGET:
    t0 = time.perf_counter()
    s.sendall(message)
    recv_exactly(s, SIZE)
    round_trips_us.append((time.perf_counter() - t0) * 1e6)
s.close()

# Download: from the "go" until the source closed after its last byte.
s = connect(SOURCE)
t0 = time.perf_counter()
s.sendall(b"g")
received = 0
while True:
    chunk = s.recv(CHUNK)
    if not chunk:
        break
    received += len(chunk)
download_s = time.perf_counter() - t0
s.close()
if received != BULK:
    raise ConnectionError(f"downloaded {received} bytes, not {BULK}")

# Upload: from the first write until the drain said how much it read (so the time covers delivery, not
# just handing the bytes to a buffer).
s = connect(DRAIN)
block = bytes(range(256)) * (CHUNK // 256)
t0 = time.perf_counter()
for _ in range(BULK // CHUNK):
    s.sendall(block)
s.shutdown(socket.SHUT_WR)
counted = int.from_bytes(recv_exactly(s, 8), "big")
upload_s = time.perf_counter() - t0
s.close()
if counted != BULK:
    raise ConnectionError(f"the drain counted {counted} bytes, not {BULK}")

print(json.dumps({
    "round_trips_us": [round(t, 1) for t in round_trips_us],
    "download_s": download_s,
    "upload_s": upload_s,
}))
