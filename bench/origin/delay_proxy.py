#!/usr/bin/env python3
"""A delaying HTTP/1.1 reverse proxy: the network between lazyblob and its registry.

  delay_proxy.py --upstream http://127.0.0.1:PORT --rtt-ms MS --mbit N --port-file F
                 [--stats-file S]

This machine's kernel has no netem, so the bench brings its own link model:
  - a new client connection costs one round trip (the TCP handshake);
  - each request costs one round trip (half before it is forwarded, half before the
    answer's first byte);
  - answer bodies go out in 64 KiB slices through ONE token bucket shared by every
    connection: the link's bandwidth is capped as a whole, not per request.
Connections are kept alive both ways (libcurl reuses them, as it would over a real link).
Counts requests and body bytes sent to clients in --stats-file (JSON, rewritten on each
request). Binds 127.0.0.1 on a free port and writes it to --port-file once listening.
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LINK = threading.Lock()
LINK_FREE = [0.0]  # time at which the link is free again
STATS = {"requests": 0, "bytes_out": 0, "connections": 0}
STATS_LOCK = threading.Lock()
LOCAL = threading.local()
SLICE = 64 * 1024


def transmit(wfile, data):
    """Writes `data` at the shared link rate."""
    for i in range(0, len(data), SLICE):
        piece = data[i:i + SLICE]
        if ARGS.mbit > 0:
            with LINK:
                start = max(time.monotonic(), LINK_FREE[0])
                LINK_FREE[0] = start + len(piece) * 8 / (ARGS.mbit * 1e6)
                done = LINK_FREE[0]
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        wfile.write(piece)


def upstream():
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        up = urllib.parse.urlparse(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        LOCAL.conn = conn
    return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with STATS_LOCK:
            STATS["connections"] += 1
        time.sleep(ARGS.rtt_ms / 1000.0)  # the handshake

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        time.sleep(ARGS.rtt_ms / 2000.0)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection")}
        for attempt in range(2):
            conn = upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                LOCAL.conn = None
                if attempt == 1:
                    raise
        time.sleep(ARGS.rtt_ms / 2000.0)
        self.send_response(resp.status)
        me = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
        for k, v in resp.getheaders():
            if k.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            if k.lower() == "location":
                v = v.replace(ARGS.upstream, me)
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            transmit(self.wfile, data)
        with STATS_LOCK:
            STATS["requests"] += 1
            STATS["bytes_out"] += len(data) if self.command != "HEAD" else 0
            if ARGS.stats_file:
                tmp = ARGS.stats_file + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(STATS, f)
                os.replace(tmp, ARGS.stats_file)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--rtt-ms", type=float, default=0)
    p.add_argument("--mbit", type=float, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats-file")
    ARGS = p.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, ARGS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
