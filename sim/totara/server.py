"""HTTP front end: ThreadingHTTPServer on loopback, Totara's headers, fault injection, /_sim/ routing."""
from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control
from .site import Response, Site, http_error_body

GRAPHQL_PATH = "/api/graphql.php"
TOKEN_PATH = "/totara/oauth2/token.php"
NO_CACHE = "no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
HTML_ERRORS = {
    502: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
         "<hr><center>nginx</center></body></html>",
    503: "<!DOCTYPE html><html><head><title>Site maintenance</title></head><body><h1>This site is undergoing "
         "maintenance and is currently not available</h1></body></html>",
    504: "<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1></body></html>",
}


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, site: Site, host: str = "127.0.0.1", port: int = 0, enable_control: bool = False):
        self.site = site
        self.enable_control = enable_control
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients use connection pools
    disable_nagle_algorithm = True  # small answers must not wait for delayed ACKs (~40 ms each)
    server_version = "Apache"      # like a real site's front end; clients must not key on it
    sys_version = ""
    server: SimServer

    def log_message(self, fmt, *args):  # quiet: one line per request would swamp test output
        pass

    def do_POST(self):
        self._dispatch("POST")

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body()
        site = self.server.site
        try:
            if path == GRAPHQL_PATH:
                self._graphql(method, body)
            elif path == TOKEN_PATH:
                self._send(site.handle_token(body, self.headers))
            elif path.startswith("/_sim/") and self.server.enable_control:
                try:
                    payload = json.loads(body) if body.strip() else {}
                    status, result = control.handle(site, method, path, payload)
                except (KeyError, ValueError, TypeError) as err:  # a bad control request, not a site fault
                    status, result = 400, {"error": f"{type(err).__name__}: {err}"}
                self._send(Response(status, result))
            else:
                self._send(Response(404, "<html><body><h1>404 Not Found</h1></body></html>",
                                    content_type="text/html; charset=utf-8"))
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - an uncaught PHP exception becomes HTTP 500
            print(f"simulator error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            body = http_error_body("Internal server error", "internal")
            self._send(Response(500, body))

    def _graphql(self, method: str, body: bytes) -> None:
        workers = self.server.site.faults.workers  # the latency model's server_workers: a busy site queues
        if workers is None:
            return self._graphql_served(method, body)
        with workers:
            return self._graphql_served(method, body)

    def _graphql_served(self, method: str, body: bytes) -> None:
        faults = self.server.site.faults
        plan = faults.before_request()
        if plan.get("latency_ms"):
            time.sleep(plan["latency_ms"] / 1000.0)
        if plan.get("reset"):
            return self._reset()
        status = plan.get("status")
        if status == 429:
            return self._send(Response(429, http_error_body("Too many requests")))
        if status in HTML_ERRORS:
            return self._send(Response(status, HTML_ERRORS[status], content_type="text/html; charset=utf-8"))
        if status:
            return self._send(Response(status, {"errors": [{"message": "Internal server error",
                                                            "extensions": {"category": "internal"}}],
                                                "error": "Internal server error"}))
        response = self.server.site.handle_graphql(method, self.headers, body, plan)
        if plan.get("item_latency_ms") and response.items:  # Totara's own work per item written
            time.sleep(plan["item_latency_ms"] * response.items / 1000.0)
        after = faults.after_commit(response.is_mutation)  # the change is committed at this point
        if after.get("reset"):
            return self._reset()
        if after.get("sleep_s"):
            time.sleep(after["sleep_s"])
        self._send(response)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        if isinstance(response.body, str):
            payload = response.body.encode("utf-8")
        else:  # unescaped Unicode and slashes, compact like PHP json_encode
            payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", NO_CACHE)
        self.send_header("Pragma", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(payload)


def start_in_thread(site: Site, port: int = 0, enable_control: bool = True) -> tuple[SimServer, threading.Thread]:
    """In-process server for fast tests; stop with server.shutdown(); server.server_close()."""
    server = SimServer(site, port=port, enable_control=enable_control)
    thread = threading.Thread(target=server.serve_forever, name="totara-sim", daemon=True)
    thread.start()
    return server, thread
