"""The web front of bench's two-tier application: an HTTP server doing one Redis round trip
per request.

    GET <any path>  ->  INCR <key> on Redis  ->  200, the new count as the body

Each HTTP connection gets its own Redis connection, opened with its first request, as a web
app with a connection pool would have: a request costs one HTTP parse, one RESP round trip
and one response, so the measured path is client -> front -> Redis -> front -> client. Redis'
counter is then the number of requests the front answered (bench checks it against wrk's).
When Redis cannot be reached the answer is 502, which wrk counts as a non-2xx response.

Python's standard library only, speaking RESP over a socket: the workload image has no pip.
Usage: python3 front.py --listen ADDR --port PORT --redis HOST:PORT [--key KEY]
"""

from __future__ import annotations

import argparse
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RedisError(Exception):
    """An error reply from Redis, or a reply this client does not understand."""


class RedisConnection:
    """One RESP connection: commands out as arrays of bulk strings, one reply read back."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def call(self, *args: bytes):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.reader.read(n + 2)[:-2]
        raise RedisError(f"unexpected reply {line[:40]!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: wrk sends every request of a connection on it
    disable_nagle_algorithm = True  # a response must not wait for the client's delayed ACK
    wbufsize = 65536                # headers and body leave in one write, flushed per request
    redis: RedisConnection | None = None

    def do_GET(self) -> None:
        try:
            if self.redis is None:
                self.redis = RedisConnection(*self.server.redis_address)
            body, status = b"%d\n" % self.redis.call(b"INCR", self.server.key), 200
        except (OSError, ValueError, RedisError) as e:
            self._close_redis()
            body, status = f"redis: {e}\n".encode(), 502
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def finish(self) -> None:
        self._close_redis()
        super().finish()

    def _close_redis(self) -> None:
        if self.redis is not None:
            self.redis.close()
            self.redis = None

    def log_message(self, format: str, *args) -> None:
        pass  # a log line per request would cost more than the request itself


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: wrk opens all its connections at once

    def __init__(self, address: tuple[str, int], redis_address: tuple[str, int], key: bytes):
        self.redis_address = redis_address
        self.key = key
        super().__init__(address, Front)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, metavar="HOST:PORT")
    parser.add_argument("--key", default="hits")
    args = parser.parse_args()
    host, _, port = args.redis.rpartition(":")
    server = FrontServer((args.listen, args.port), (host, int(port)), args.key.encode())
    print(f"front: listening on {args.listen}:{args.port}, Redis at {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
