"""The exercise's receiver, written from its steps, for interoperation tests.

Usage: python3 exercise_receiver.py [GROUP [PORT [COUNT]]]
Joins GROUP on the loopback interface only and exits after COUNT messages
(default: loops until interrupted).
"""

import socket
import struct
import sys

group = sys.argv[1] if len(sys.argv) > 1 else "224.1.1.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
count = int(sys.argv[3]) if len(sys.argv) > 3 else None

# 1. Create a UDP socket.
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

# 2. Bind the socket to the port on all interfaces.
sock.bind(("", port))

# 3. Join the multicast group, on the loopback interface (never INADDR_ANY).
membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1"))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)

# 4. Receive and respond with a unicast acknowledgement.
received = 0
while True:
    print("waiting to receive message", flush=True)
    data, address = sock.recvfrom(65535)
    text = data.decode("utf-8", "backslashreplace")
    print(f"received {len(data)} bytes from {address} : {text}", flush=True)
    print(f"sending acknowledgement to {address}", flush=True)
    sock.sendto(b"ack", address)
    received += 1
    if count is not None and received >= count:
        break
    print(flush=True)

sock.close()
