"""A local HTTP server that serves model repositories the way the Hugging Face Hub does.

``GET``/``HEAD /{owner}/{repo}/resolve/{revision}/{filename}`` answers with the headers
``huggingface_hub.hf_hub_download`` reads (``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``,
``X-Linked-Size``, ``Content-Length``). ``corrupt`` names files whose body is served with one byte
flipped (same size, so only a content hash can tell).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


class HubServer:
    def __init__(self, repos: dict[str, Path], commit: str) -> None:
        self.repos = repos  # repo_id -> folder
        self.commit = commit
        self.corrupt: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                server.requests.append(f"{self.command} {self.path}")
                data = server.lookup(unquote(self.path))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                content, etag = data
                self.send_response(200)
                self.send_header("X-Repo-Commit", server.commit)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(content)))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    self.wfile.write(content)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def lookup(self, path: str) -> tuple[bytes, str] | None:
        parts = path.strip("/").split("/")
        if len(parts) != 5 or parts[2] != "resolve" or parts[3] not in ("main", self.commit):
            return None
        repo_id, filename = "/".join(parts[:2]), parts[4]
        folder = self.repos.get(repo_id)
        if folder is None or not (folder / filename).is_file():
            return None
        content = (folder / filename).read_bytes()
        etag = hashlib.sha256(content).hexdigest()  # the Hub's LFS etag is the sha256 of the true content
        if filename in self.corrupt:
            content = bytes([content[0] ^ 0xFF]) + content[1:]
        return content, etag

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
