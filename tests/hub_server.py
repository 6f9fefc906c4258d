"""A local HTTP server that speaks the Hugging Face Hub's protocol to huggingface_hub's real client.

It holds model repositories in memory: each repository is a set of commits (the whole file tree of
each, files are small here) and branches pointing at them. It answers the requests that
huggingface_hub (1.33) sends, with the fields its code reads:

Downloads (``hf_hub_download``, ``snapshot_download``):

- ``HEAD``/``GET /{owner}/{repo}/resolve/{revision}/{path}``: the file at a branch or commit id,
  with ``X-Repo-Commit`` (the commit the revision resolves to), ``ETag`` (the git blob sha1 of the
  true content: every file here is stored as a regular git file) and ``Content-Length``; 404 with
  ``X-Error-Code`` ``RepoNotFound``, ``RevisionNotFound`` or ``EntryNotFound``;
- ``GET /api/models/{repo_id}[/revision/{revision}]`` (``model_info``/``repo_info``): ``sha`` and
  ``siblings``;
- ``GET /api/models/{repo_id}/tree/{revision}[/{path}]`` (``list_repo_tree``/``list_repo_files``):
  ``type``, ``path``, ``oid``, ``size`` of each file (and folder, when not recursive).

Uploads (``create_repo``, ``create_branch``, ``upload_folder``/``create_commit``):

- ``POST /api/repos/create``: ``{"name", "organization", "type", "visibility"}`` -> ``{"url"}``;
  409 (with the ``url``, which ``exist_ok=True`` reads) when the repository exists. A new repository's ``main``
  is an initial commit with no files (the Hub's holds a ``.gitattributes``);
- ``POST /api/models/{repo_id}/branch/{branch}``: ``{"startingPoint"}`` (default ``main``); 409
  when it exists;
- ``POST /api/validate-yaml``: ``{"content", "repoType"}``; the README's front matter must be a
  YAML mapping (400 with ``errors`` otherwise);
- ``POST /api/models/{repo_id}/preupload/{revision}``: ``{"files": [{"path", "sample", "size"}]}``
  -> ``uploadMode`` ``"regular"`` for every file (so contents come inline, base64, in the commit;
  no LFS or Xet storage), ``shouldIgnore`` false and ``oid``, the git blob sha1 of the file now at
  that path (the client skips unchanged files with it);
- ``POST /api/models/{repo_id}/commit/{branch}``: ndjson, a ``header`` line (``summary``,
  ``description``, optional ``parentCommit``) then ``file`` (base64 ``content``), ``deletedFile``
  and ``deletedFolder`` lines -> ``{"commitOid", "commitUrl"}``; the branch then points at the new
  commit. ``lfsFile`` lines are refused (this server never asks for LFS), so is ``create_pr``, and
  a ``parentCommit`` that is not the branch head is 412, as on the Hub.

With ``token`` set, every write needs ``Authorization: Bearer <token>`` (401 otherwise); reads
are public. ``corrupt`` names files whose body is served with one byte flipped (same size and
ETag, so only a content hash can tell); ``requests`` logs every request line.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml


def git_oid(content: bytes) -> str:
    """The git blob sha1 of ``content``: what the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit id -> {path: content}
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit id
    private: bool = False

    def resolve(self, revision: str) -> str | None:
        """The commit a branch name or commit id stands for, or None."""
        return self.branches.get(revision) or (revision if revision in self.commits else None)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **fields) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.fields = status, message, code, fields


def check_path(path: object) -> str:
    """A file path inside a repository: relative, no empty, ``.`` or ``..`` parts."""
    if not isinstance(path, str) or not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise HubError(400, f"invalid path in repository: {path!r}")
    return path


class HubServer:
    def __init__(self, repos: dict[str, Path] | None = None, commit: str | None = None,
                 token: str | None = None) -> None:
        """Serve each folder of ``repos`` (repo id -> folder) as a repository whose ``main`` is the
        commit ``commit`` holding the folder's files; more come from uploads."""
        self.repos: dict[str, Repo] = {}
        self.token = token
        self.corrupt: set[str] = set()
        self.requests: list[str] = []
        self.lock = threading.Lock()
        assert commit is not None or not repos, "folders are served at a commit id: pass commit"
        for repo_id, folder in (repos or {}).items():
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            self.repos[repo_id] = Repo(commits={commit: files}, branches={"main": commit})
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                self._handle(server.read, body=False)

            def do_GET(self):
                self._handle(server.read, body=True)

            def do_POST(self):
                self._handle(server.write, body=True)

            def _handle(self, route, body: bool) -> None:
                server.requests.append(f"{self.command} {self.path}")
                url = urlsplit(self.path)
                parts = [unquote(part) for part in url.path.strip("/").split("/")]
                try:
                    if self.command == "POST":
                        server.authorize(self.headers.get("Authorization"))
                    status, headers, content = route(parts, parse_qs(url.query), self)
                except HubError as error:
                    content = json.dumps({"error": error.message, **error.fields}).encode()
                    brief = error.message[:200].encode("ascii", "replace").decode()  # a header is latin-1
                    status, headers = error.status, {"Content-Type": "application/json", "X-Error-Message": brief}
                    if error.code:
                        headers["X-Error-Code"] = error.code
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(content))}.items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(content)

            def read_body(self) -> bytes:
                if "Content-Length" not in self.headers:
                    raise HubError(411, "a request body needs Content-Length")
                return self.rfile.read(int(self.headers["Content-Length"]))

            def read_json(self):
                try:
                    return json.loads(self.read_body())
                except ValueError as error:
                    raise HubError(400, f"body is not JSON: {error}") from None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # ------------------------------------------------------------------------------ for tests

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (a branch or commit id), as stored."""
        repo = self.repo(repo_id)
        return dict(repo.commits[self.commit_of(repo, revision)])

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Create ``repo_id`` with one commit on ``main`` holding ``files``; returns its id."""
        with self.lock:
            self.repos[repo_id] = Repo()
            return self.commit(self.repos[repo_id], "main", None, files, "add_repo")

    # ------------------------------------------------------------------------------ state

    def repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, f"Repository {repo_id!r} not found", "RepoNotFound")
        return self.repos[repo_id]

    def commit_of(self, repo: Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid

    def commit(self, repo: Repo, branch: str, parent: str | None, files: dict[str, bytes], summary: str) -> str:
        """Record ``files`` as a new commit on ``branch`` (after ``parent``); returns its id."""
        tree = sorted((path, git_oid(content)) for path, content in files.items())
        oid = hashlib.sha1(json.dumps([parent, summary, tree, len(repo.commits)]).encode()).hexdigest()
        repo.commits[oid] = files
        repo.branches[branch] = oid
        return oid

    def authorize(self, header: str | None) -> None:
        if self.token is not None and header != f"Bearer {self.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    # ------------------------------------------------------------------------------ reads

    def read(self, parts: list[str], query: dict, request) -> tuple[int, dict, bytes]:
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = "/".join(parts[2:4]), parts[4:]
            if not rest or rest[0] == "revision" and len(rest) == 2:
                return self.info(repo_id, rest[1] if rest else "main")
            if rest[0] == "tree" and len(rest) >= 2:
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self.tree(repo_id, rest[1], "/".join(rest[2:]), recursive)
        raise HubError(404, f"no such endpoint: {request.command} {request.path}")

    def resolve(self, repo_id: str, revision: str, path: str) -> tuple[int, dict, bytes]:
        with self.lock:
            repo = self.repo(repo_id)
            oid = self.commit_of(repo, revision)
            content = repo.commits[oid].get(path)
        if content is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"X-Repo-Commit": oid, "ETag": f'"{git_oid(content)}"'}  # of the true content
        if path in self.corrupt and content:
            content = bytes([content[0] ^ 0xFF]) + content[1:]
        return 200, headers, content

    def info(self, repo_id: str, revision: str) -> tuple[int, dict, bytes]:
        with self.lock:
            repo = self.repo(repo_id)
            oid = self.commit_of(repo, revision)
            data = {"id": repo_id, "modelId": repo_id, "sha": oid, "private": repo.private,
                    "siblings": [{"rfilename": path} for path in sorted(repo.commits[oid])]}
        return 200, {"Content-Type": "application/json"}, json.dumps(data).encode()

    def tree(self, repo_id: str, revision: str, folder: str, recursive: bool) -> tuple[int, dict, bytes]:
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        with self.lock:
            repo = self.repo(repo_id)
            files = repo.commits[self.commit_of(repo, revision)]
        entries, folders = [], set()
        for path in sorted(p for p in files if p.startswith(prefix)):
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entries.append({"type": "file", "path": path, "oid": git_oid(files[path]), "size": len(files[path])})
        entries += [{"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0}
                    for path in sorted(folders)]
        return 200, {"Content-Type": "application/json"}, json.dumps(entries).encode()

    # ------------------------------------------------------------------------------ writes

    def write(self, parts: list[str], query: dict, request) -> tuple[int, dict, bytes]:
        if parts == ["api", "repos", "create"]:
            result = self.create_repo(request.read_json())
        elif parts == ["api", "validate-yaml"]:
            result = self.validate_yaml(request.read_json())
        elif parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] in ("preupload", "commit", "branch"):
            repo_id, action, revision = "/".join(parts[2:4]), parts[4], parts[5]
            if action == "preupload":
                result = self.preupload(repo_id, revision, request.read_json())
            elif action == "branch":
                result = self.create_branch(repo_id, revision, request.read_json())
            else:
                if query.get("create_pr"):
                    raise HubError(400, "this server does not open pull requests")
                result = self.create_commit(repo_id, revision, request.read_body())
        else:
            raise HubError(404, f"no such endpoint: {request.command} {request.path}")
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()

    def create_repo(self, payload: dict) -> dict:
        if payload.get("type", "model") != "model":
            raise HubError(400, f"this server holds model repositories only, not {payload.get('type')!r}")
        repo_id = f"{payload.get('organization')}/{payload.get('name')}"
        if not payload.get("organization") or not isinstance(payload.get("name"), str):
            raise HubError(400, "a repository needs a name and an organization (owner)")
        with self.lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo_id}")
            self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
            self.commit(self.repos[repo_id], "main", None, {}, "initial commit")
        return {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id}

    def create_branch(self, repo_id: str, branch: str, payload: dict) -> dict:
        with self.lock:
            repo = self.repo(repo_id)
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: {branch}")
            repo.branches[branch] = self.commit_of(repo, payload.get("startingPoint") or "main")
        return {}

    def validate_yaml(self, payload: dict) -> dict:
        text = payload.get("content", "")
        if text.startswith("---\n"):
            front = text[4:].split("\n---", 1)[0]
            try:
                metadata = yaml.safe_load(front)
            except yaml.YAMLError as error:
                raise HubError(400, "Invalid metadata in README.md", "InvalidMetadata") from error
            if not isinstance(metadata, dict):
                raise HubError(400, "README.md metadata must be a YAML mapping", "InvalidMetadata")
        return {"errors": [], "warnings": []}

    def preupload(self, repo_id: str, revision: str, payload: dict) -> dict:
        with self.lock:
            repo = self.repo(repo_id)
            files = repo.commits[self.commit_of(repo, revision)]
        answers = []
        for entry in payload.get("files", []):
            path = check_path(entry.get("path"))
            current = files.get(path)
            answers.append({"path": path, "uploadMode": "regular", "shouldIgnore": False,
                            "oid": git_oid(current) if current is not None else None})
        return {"files": answers}

    def create_commit(self, repo_id: str, branch: str, body: bytes) -> dict:
        try:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError as error:
            raise HubError(400, f"commit payload is not ndjson: {error}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit payload starts with its header line")
        header = lines[0]["value"]
        with self.lock:
            repo = self.repo(repo_id)
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
            parent = repo.branches[branch]
            if header.get("parentCommit") not in (None, parent):
                raise HubError(412, f"A commit has happened since {header['parentCommit']}; the branch is at {parent}")
            files = copy.copy(repo.commits[parent])
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = check_path(value.get("path"))
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"{path}: file content must be base64-encoded")
                    files[path] = base64.b64decode(value.get("content", ""), validate=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"cannot delete {path}: no such file", "EntryNotFound")
                elif key == "deletedFolder":
                    files = {p: c for p, c in files.items() if not p.startswith(path.rstrip("/") + "/")}
                elif key == "lfsFile":
                    raise HubError(400, f"{path}: LFS upload not supported (this server asks for regular uploads)")
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            oid = self.commit(repo, branch, parent, files, header.get("summary", ""))
        return {"success": True, "commitOid": oid, "commitUrl": f"{self.url}/{repo_id}/commit/{oid}",
                "pullRequestUrl": None}

    # ------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
