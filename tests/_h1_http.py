"""Test helper: a local HTTP file server on 127.0.0.1 with Range support and fault injection."""

import http.server
import re
import socket
import threading
import time


class FileServer:
    """Serves ``files`` ({"/name": bytes}) to GET and HEAD, with byte ranges open (``bytes=N-``,
    as downloads resume) or closed (``bytes=N-M``, as GDAL's /vsicurl/ reads);
    ``drop_after[name] = n`` makes the first request
    for that file send the full Content-Length but only ``n`` bytes, then cut the connection.
    ``requests`` records (path, Range header or None) of every request in arrival order. ``no_length`` holds paths
    answered without Content-Length (the connection is closed at the end instead);
    ``chunk_delay_s[name]`` sleeps that long between 64 KiB pieces (a slow server)."""

    def __init__(self, files):
        self.files = dict(files)
        self.drop_after = {}
        self.requests = []
        self.no_length = set()
        self.chunk_delay_s = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server._serve(self)

            def do_HEAD(self):
                server._serve(self, body=False)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # a client that stops reading (a download cut off on purpose) is not a server error
        self._httpd.handle_error = lambda request, client_address: None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _serve(self, handler, body=True):
        range_header = handler.headers.get("Range")
        self.requests.append((handler.path, range_header))
        data = self.files.get(handler.path)
        if data is None:
            handler.send_error(404)
            return
        start, end = 0, len(data) - 1
        if range_header:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header)
            start = int(match.group(1))
            end = min(int(match.group(2) or end), end)
            if start >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            handler.send_response(200)
        handler.send_header("Accept-Ranges", "bytes")
        content = data[start:end + 1]
        if handler.path in self.no_length:
            handler.close_connection = True
        else:
            handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        if not body:
            return
        body = content
        cut = self.drop_after.pop(handler.path, None)
        if cut is not None:
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        delay = self.chunk_delay_s.get(handler.path)
        if delay:
            for offset in range(0, len(body), 1 << 16):
                handler.wfile.write(body[offset : offset + (1 << 16)])
                handler.wfile.flush()
                time.sleep(delay)
            return
        handler.wfile.write(body)
