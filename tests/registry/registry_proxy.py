#!/usr/bin/env python3
"""A small HTTP reverse proxy in front of a test registry, to make it misbehave.

  registry_proxy.py --port-file F --upstream http://127.0.0.1:PORT --mode MODE [options]

Modes:
  pass        forward unchanged (with --rtt-ms / --mbit: a slow network for benchmarks)
  strip-range drop the Range header, so the registry answers 200 with the whole blob
  flip        flip one byte in the middle of every 206 (ranged) blob response body
  hang        accept connections and never answer
  flaky       answer every other request with 503 Service Unavailable (clients must retry)
  switch      forward unchanged while --down-file does not exist; while it does, close each
              connection without an answer (a stopped registry), or never answer when
              the file says "hang"
  bearer      demand "Authorization: Bearer <token>"; answer 401 with a Bearer challenge
              naming /token on this proxy, which issues the token for Basic credentials
              --user/--password (the registry token flow)

Binds 127.0.0.1 on a free port and writes it to --port-file once listening. Counts
requests per method and Range use in --stats-file (JSON) on every request.
"""
import argparse
import base64
import http.client
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
STATS = {"requests": 0, "range_requests": 0, "by_method": {}, "bytes_out": 0}
STATS_LOCK = threading.Lock()
FLAKY = {"n": 0}
TOKEN = "lazyblob-test-token-7f3a"


def note(method, ranged, nbytes):
    with STATS_LOCK:
        STATS["requests"] += 1
        STATS["range_requests"] += 1 if ranged else 0
        STATS["by_method"][method] = STATS["by_method"].get(method, 0) + 1
        STATS["bytes_out"] += nbytes
        if ARGS.stats_file:
            tmp = ARGS.stats_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(STATS, f)
            os.replace(tmp, ARGS.stats_file)


def delay(nbytes):
    """Half the round trip each way, plus the bytes' transfer time at --mbit."""
    if ARGS.rtt_ms:
        time.sleep(ARGS.rtt_ms / 2000.0)
    if ARGS.mbit:
        time.sleep(nbytes * 8 / (ARGS.mbit * 1e6))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _bearer_gate(self):
        """True when the request may go on; else a 401 or a token was sent."""
        path = urllib.parse.urlparse(self.path)
        if path.path == "/token":
            want = "Basic " + base64.b64encode(
                f"{ARGS.user}:{ARGS.password}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self._reply(401, [("Content-Type", "application/json")],
                            b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            else:
                q = urllib.parse.parse_qs(path.query)
                body = json.dumps({"token": TOKEN, "expires_in": 300,
                                   "scope": q.get("scope", [""])[0]}).encode()
                self._reply(200, [("Content-Type", "application/json")], body)
            return False
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            host = self.server.server_address
            realm = f"http://{host[0]}:{host[1]}/token"
            challenge = f'Bearer realm="{realm}",service="lazyblob-test",scope="repository:x:pull"'
            self._reply(401, [("WWW-Authenticate", challenge),
                              ("Content-Type", "application/json")],
                        b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return False
        return True

    def _forward(self):
        if ARGS.mode == "hang":
            time.sleep(3600)
            return
        if ARGS.mode == "switch" and ARGS.down_file and os.path.exists(ARGS.down_file):
            with open(ARGS.down_file) as f:
                hang = f.read().strip() == "hang"
            note(self.command, False, 0)
            if hang:
                time.sleep(3600)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if ARGS.mode == "flaky":
            with STATS_LOCK:
                FLAKY["n"] += 1
                fail = FLAKY["n"] % 2 == 1
            if fail:
                note(self.command, False, 0)
                self._reply(503, [("Content-Type", "text/plain")], b"try again\n")
                return
        if ARGS.mode == "bearer" and not self._bearer_gate():
            note(self.command, False, 0)
            return
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "authorization")}
        ranged = "Range" in self.headers
        if ARGS.mode == "strip-range":
            headers.pop("Range", None)
        up = urllib.parse.urlparse(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        delay(len(body or b""))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if ARGS.mode == "flip" and resp.status == 206 and len(data) > 0:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x01
            data = bytes(data)
        delay(len(data))
        out = []
        me = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
        for k, v in resp.getheaders():
            if k.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            if k.lower() == "location":
                v = v.replace(ARGS.upstream, me)
            out.append((k, v))
        note(self.command, ranged, len(data))
        self._reply(resp.status, out, data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--mode", default="pass",
                   choices=["pass", "strip-range", "flip", "hang", "bearer", "flaky", "switch"])
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats-file")
    p.add_argument("--rtt-ms", type=float, default=0)
    p.add_argument("--mbit", type=float, default=0)
    p.add_argument("--down-file", default="")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    ARGS = p.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, ARGS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
