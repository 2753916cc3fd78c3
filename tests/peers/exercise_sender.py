"""The exercise's sender, written from its steps, for interoperation tests.

Usage: python3 exercise_sender.py [GROUP [PORT [MESSAGE [WAIT_SECONDS]]]]
Sends from 127.0.0.1, so the datagram stays on the loopback interface.
"""

import socket
import sys

group = sys.argv[1] if len(sys.argv) > 1 else "224.1.1.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
message = sys.argv[3] if len(sys.argv) > 3 else "very important data"
wait = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0

# 1. Create a UDP socket, bound to loopback so multicast leaves via lo.
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))

# 2. Set the time-to-live to 1: the datagram never crosses a router.
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)

# 3. Send the data to the group.
print(f'sending "{message}"', flush=True)
sock.sendto(message.encode(), (group, port))

# 4. Wait for acknowledgements until the wait ends.
sock.settimeout(wait)
print("waiting to receive", flush=True)
while True:
    try:
        data, server = sock.recvfrom(65535)
    except socket.timeout:
        break
    text = data.decode("utf-8", "backslashreplace")
    print(f'received "{text}" from {server}', flush=True)

print("closing socket", flush=True)
sock.close()
