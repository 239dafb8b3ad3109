"""A small HTTP proxy in front of moto that plays a different S3-compatible store: it can answer
chosen subresources with an error (501 NotImplemented, as some MinIO/Ceph versions do) or fail
the first N requests with 409 OperationAborted. In front of moto's other services it can answer a
Query-protocol action (RDS's CreateDBInstance, say) with the error AWS gives where moto gives none,
or rewrite its responses (an instance that stays "creating", as a real one does for minutes).
Loopback only; stops with the test."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):  # its client was killed meanwhile
            self.close_connection = True


def _query_params(body: bytes | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((body or b"").decode("latin-1")).items()}


class S3Proxy:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.not_implemented: set[str] = set()  # subresources, e.g. "ownershipControls"
        self.abort_next = 0  # this many requests get 409 OperationAborted
        self.requests: list[str] = []
        self.calls: list[dict[str, str]] = []  # each request's Query-protocol parameters (RDS, EC2, IAM; {} for S3)
        self.drop_headers: set[str] = set()  # e.g. {"If-None-Match"}: a store that ignores them
        self.reject_actions: dict[str, tuple[str, str]] = {}  # Query action -> (error code, message), as 400
        self.reject_times: dict[
            str, int
        ] = {}  # Query action -> how many times reject_actions applies (default: always)
        self.rewrite: dict[str, tuple[bytes, bytes]] = {}  # Query action -> (old, new) in its responses
        self.refuse_deletes = False  # DeleteObjects answers 200 with an AccessDenied error per key (Object Lock)
        self.hold: set[str] = set()  # requests on these subresources wait for release (a kill lands meanwhile)
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(_QuietHandler):
            def _error(self, status: int, code: str):
                body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append(f"{self.command} {self.path}")
                query = urlsplit(self.path).query
                proxy.calls.append(_query_params(body))
                action = proxy.calls[-1].get("Action", "")
                if action in proxy.reject_actions and proxy.reject_times.get(action, 1) > 0:
                    if action in proxy.reject_times:
                        proxy.reject_times[action] -= 1
                    code, message = proxy.reject_actions[action]
                    xml = (
                        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                        "</Error><RequestId>1</RequestId></ErrorResponse>"
                    ).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    return self.wfile.write(xml)
                if proxy.refuse_deletes and self.command == "POST" and "delete" in query.split("&"):
                    import re

                    keys = re.findall(rb"<Key>(.*?)</Key>", body or b"")
                    xml = (
                        b"<DeleteResult>"
                        + b"".join(
                            b"<Error><Key>"
                            + k
                            + b"</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                            for k in keys
                        )
                        + b"</DeleteResult>"
                    )
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    return self.wfile.write(xml)
                if proxy.swallowed(self.command, query):
                    self.close_connection = True  # never reaches the store: its client was killed meanwhile
                    return None
                if proxy.abort_next > 0:
                    proxy.abort_next -= 1
                    return self._error(409, "OperationAborted")
                if any(q.split("=")[0] in proxy.not_implemented for q in query.split("&") if q):
                    return self._error(501, "NotImplemented")
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k not in proxy.drop_headers}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if action in proxy.rewrite:
                    data = data.replace(*proxy.rewrite[action])
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def swallowed(self, command: str, query: str) -> bool:
        """A PUT on a held subresource waits for release, and is then dropped."""
        if command == "PUT" and any(q.split("=")[0] in self.hold for q in query.split("&") if q):
            self.held.set()
            self.release.wait(60)
            return True
        return False

    def __enter__(self) -> S3Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
