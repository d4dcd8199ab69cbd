# Row 21: connects to a listener the test opened on 127.0.0.1, resolves DNS, sends UDP.
# Expect runtime_error listing the failures; nothing reaches the listener.
import socket


def module_basics_forward(seed, x, features):
    errors = []
    for host in ("127.0.0.1", "localhost", "10.0.2.2"):
        try:
            with socket.create_connection((host, __PORT__), timeout=1) as conn:
                conn.sendall(b"__MARKER__ hello from the sandbox")
                errors.append(f"{host}: CONNECTED")
        except OSError as exc:
            errors.append(f"{host}: {exc}")
    try:
        errors.append(f"dns: {socket.getaddrinfo('example.com', 80)}")
    except OSError as exc:
        errors.append(f"dns: {exc}")
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"__MARKER__", ("127.0.0.1", __PORT__))
        errors.append("udp: SENT")
    except OSError as exc:
        errors.append(f"udp: {exc}")
    raise ConnectionError("; ".join(errors))
