#!/usr/bin/env python3
"""Holds N console event streams (GET /admin/v1/events) open against a
running mcmp and reads them to the end, as N browsers on the overview
would; prints how many `stats` events arrived. Usage:
  streams.py URL ADMIN_TOKEN N SECONDS
"""
import socket
import sys
import threading
import time
from urllib.parse import urlparse

url, token, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
u = urlparse(url)
events = [0] * n
stop = time.time() + secs


def hold(i):
    s = socket.create_connection((u.hostname, u.port))
    s.settimeout(5)
    s.sendall(f"GET /admin/v1/events HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    while time.time() < stop:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        events[i] += data.count(b"event: stats")
    s.close()


threads = [threading.Thread(target=hold, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{n} streams, {sum(events)} stats events in {secs:.0f} s ({sum(events) / n / secs:.2f} per stream per second)")
