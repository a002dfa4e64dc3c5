"""TEST INFRASTRUCTURE: a tiny in-memory Hugging Face Hub look-alike for the Hub round-trip tests.

This is not part of carseg. It implements just the HTTP endpoints that huggingface_hub 2.x's real client
(`HfApi`, `hf_hub_download`) and transformers' `from_pretrained` call, so that the tests can push and load models
by repo id without any network:

- `POST /api/repos/create` (model repos, and Space repos with their `sdk`), `POST /api/validate-yaml`
- `POST /api/models/{repo}/preupload/{rev}`: always answers `"uploadMode": "regular"`, so file contents travel
  base64 inside the commit call (no LFS, no Xet)
- `POST /api/models/{repo}/commit/{rev}`: NDJSON (`header`, `file`, `deletedFile`, `deletedFolder`), applied
  atomically; `HubServer.fail_next_commit` makes the next commit fail part-way through its files
- `GET /api/models/{repo}[/revision/{rev}]`, `GET /api/models/{repo}/tree/{rev}[/{path}]`,
  `POST /api/models/{repo}/paths-info/{rev}`, `GET /api/models/{repo}/refs`,
  `POST /api/models/{repo}/branch/{branch}`; the same under `/api/spaces/` for Space repos
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag` and `Content-Length` (no body on HEAD)

Errors use the Hub's `X-Error-Code` header (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) so that the client
raises its usual exceptions. The server runs `http.server` in a daemon thread on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


@dataclass
class _Commit:
    sha: str
    files: dict[str, bytes]
    message: str
    parent: str | None


@dataclass
class _Repo:
    repo_id: str
    private: bool
    repo_type: str = "model"
    space_sdk: str | None = None
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> _Commit | None:
        """The commit a branch name or a full commit sha points to."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra or {}


class HubServer:
    """An in-memory Hub served over HTTP in a background thread (TEST INFRASTRUCTURE).

    Attributes:
        url: Base URL to use as `HF_ENDPOINT`, e.g. `http://127.0.0.1:54321`.
        requests: `(method, path)` of every request received, in order.
    """

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._fail_at: str | None = None
        self._fail_mode = "error"
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-hub-server", daemon=True)

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def fail_next_commit(self, at_path: str, mode: str = "error") -> None:
        """Make the next commit fail when it reaches the file `at_path`, after applying the files before it.

        The partially applied commit is discarded, as the real Hub does: nothing of it becomes visible.

        Args:
            at_path: Path in the repo of the file at which the commit breaks.
            mode: `"error"` answers HTTP 500; `"disconnect"` closes the connection without an answer.
        """
        if mode not in ("error", "disconnect"):
            raise ValueError(f"mode must be 'error' or 'disconnect', got {mode!r}")
        self._fail_at, self._fail_mode = at_path, mode

    def head_sha(self, repo_id: str, branch: str = "main") -> str:
        return self.repos[repo_id].branches[branch]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].resolve(revision).files)

    # ----------------------------------------------------------------------------------------------- repo model
    def _new_sha(self, payload: bytes) -> str:
        self._counter += 1
        return hashlib.sha1(payload + str(self._counter).encode()).hexdigest()

    def _repo(self, repo_id: str) -> _Repo:
        if repo_id not in self.repos:
            raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return self.repos[repo_id]

    def _commit_at(self, repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def create_repo(self, repo_id: str, private: bool, repo_type: str = "model", space_sdk: str | None = None) -> None:
        with self._lock:
            if repo_id in self.repos:
                # Like the Hub, the conflict answer still carries the repo URL (create_repo(exist_ok=True) reads it).
                raise _HubError(409, "You already created this model repo", extra={"url": f"{self.url}/{repo_id}"})
            repo = _Repo(repo_id=repo_id, private=private, repo_type=repo_type, space_sdk=space_sdk)
            sha = self._new_sha(repo_id.encode())
            repo.commits[sha] = _Commit(sha, {".gitattributes": _GITATTRIBUTES}, "initial commit", None)
            repo.branches["main"] = sha
            self.repos[repo_id] = repo

    def create_branch(self, repo_id: str, branch: str, starting_point: str | None) -> None:
        with self._lock:
            repo = self._repo(repo_id)
            if branch in repo.branches:
                raise _HubError(409, f"Reference already exists: refs/heads/{branch}")
            repo.branches[branch] = self._commit_at(repo, starting_point or "main").sha

    def commit(self, repo_id: str, revision: str, lines: list[dict]) -> tuple[str, bool]:
        """Apply NDJSON commit operations atomically; returns `(sha, disconnect)`."""
        with self._lock:
            repo = self._repo(repo_id)
            if revision not in repo.branches:
                raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            parent = repo.commits[repo.branches[revision]]
            staged = dict(parent.files)
            message = "commit"
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "header":
                    message = value.get("summary", message)
                    expected_parent = value.get("parentCommit")
                    if expected_parent and expected_parent != parent.sha:
                        raise _HubError(412, "A commit has happened since. Please refresh and try again.")
                elif key == "file":
                    if self._fail_at is not None and value["path"] == self._fail_at:
                        self._fail_at, mode = None, self._fail_mode
                        if mode == "disconnect":
                            return "", True
                        raise _HubError(500, f"injected failure while committing {value['path']}")
                    if value.get("encoding") != "base64":
                        raise _HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                    staged[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in staged:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del staged[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    staged = {p: c for p, c in staged.items() if not p.startswith(prefix)}
                else:
                    raise _HubError(400, f"unsupported commit operation {key!r} (this test server has no LFS)")
            sha = self._new_sha(json.dumps(sorted(staged)).encode() + message.encode())
            repo.commits[sha] = _Commit(sha, staged, message, parent.sha)
            repo.branches[revision] = sha
            return sha, False


def _etag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _file_entry(path: str, content: bytes) -> dict:
    return {"type": "file", "path": path, "size": len(content), "oid": hashlib.sha1(content).hexdigest()}


def _requested_private(payload: dict) -> bool:
    """Whether a `/api/repos/create` payload asks for a private repo.

    huggingface_hub 2.x sends `"visibility": "public" | "private"`, 1.x sent `"private": true | false`; like the Hub,
    the server honours both and refuses an unknown visibility.
    """
    if "visibility" in payload:
        if payload["visibility"] not in ("public", "private"):
            raise _HubError(
                400, f"invalid visibility {payload['visibility']!r} for a model repo; expected public or private"
            )
        return payload["visibility"] == "private"
    return bool(payload.get("private"))


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence the default stderr log
            return

        # ------------------------------------------------------------------------------------------- plumbing
        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            headers = {"Content-Type": "application/json", **(headers or {})}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data, status: int = 200) -> None:
            self._send(status, json.dumps(data).encode())

        def _error(self, error: _HubError) -> None:
            headers = {"X-Error-Message": str(error)}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, json.dumps({"error": str(error), **error.extra}).encode(), headers)

        def _dispatch(self) -> None:
            split = urlsplit(self.path)
            parts = [unquote(p) for p in split.path.split("/")[1:]]
            query = parse_qs(split.query)
            with hub._lock:
                hub.requests.append((self.command, split.path))
            try:
                body = self._body() if self.command in ("POST", "PUT", "DELETE") else b""
                self._route(parts, query, body)
            except _HubError as error:
                self._error(error)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch  # noqa: N815 - http.server's naming

        # --------------------------------------------------------------------------------------------- routes
        def _route(self, parts: list[str], query: dict, body: bytes) -> None:
            if parts[:2] == ["api", "repos"] and parts[2:] == ["create"] and self.command == "POST":
                payload = json.loads(body or b"{}")
                repo_type = payload.get("type", "model")
                if repo_type not in ("model", "space"):
                    raise _HubError(400, "this test server only hosts model and Space repos")
                if repo_type == "space" and not payload.get("sdk"):
                    raise _HubError(400, "a Space repo needs an sdk (gradio, docker or static)")
                name, org = payload["name"], payload.get("organization")
                repo_id = f"{org}/{name}" if org else name
                hub.create_repo(repo_id, _requested_private(payload), repo_type, payload.get("sdk"))
                return self._json({"url": f"{hub.url}/{repo_id}", "name": repo_id})
            if parts == ["api", "validate-yaml"] and self.command == "POST":
                return self._json({})
            if parts == ["api", "whoami-v2"]:
                return self._json({"type": "user", "name": "local-test-user", "orgs": [], "auth": {}})
            if parts[:2] in (["api", "models"], ["api", "spaces"]) and len(parts) >= 4:
                repo_type = "model" if parts[1] == "models" else "space"
                return self._api_models(parts[2] + "/" + parts[3], parts[4:], query, body, repo_type)
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
            raise _HubError(404, f"this test server does not implement {self.command} {self.path}")

        def _api_models(self, repo_id: str, rest: list[str], query: dict, body: bytes, repo_type: str) -> None:
            repo = hub._repo(repo_id)
            if repo.repo_type != repo_type:
                raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
            action = rest[0] if rest else None
            if action is None or action == "revision":
                commit = hub._commit_at(repo, rest[1] if action else "main")
                return self._json(
                    {
                        "id": repo_id,
                        "modelId": repo_id,
                        "sha": commit.sha,
                        "private": repo.private,
                        "siblings": [{"rfilename": p} for p in sorted(commit.files)],
                        "tags": [],
                        "library_name": "transformers",
                    }
                )
            if action == "preupload" and self.command == "POST":
                hub._commit_at(repo, rest[1])
                files = json.loads(body)["files"]
                return self._json(
                    {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                )
            if action == "commit" and self.command == "POST":
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                sha, disconnect = hub.commit(repo_id, rest[1], lines)
                if disconnect:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self._json({"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha})
            if action == "tree":
                commit = hub._commit_at(repo, rest[1])
                prefix = "/".join(rest[2:]).strip("/")
                return self._json(self._tree(commit.files, prefix, "recursive" in query))
            if action == "paths-info" and self.command == "POST":
                commit = hub._commit_at(repo, rest[1])
                paths = parse_qs(body.decode()).get("paths") or json.loads(body or b"{}").get("paths", [])
                return self._json([_file_entry(p, commit.files[p]) for p in paths if p in commit.files])
            if action == "refs":
                branches = [
                    {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                    for name, sha in sorted(repo.branches.items())
                ]
                return self._json({"branches": branches, "tags": [], "converts": []})
            if action == "branch" and self.command == "POST":
                payload = json.loads(body or b"{}")
                hub.create_branch(repo_id, "/".join(rest[1:]), payload.get("startingPoint"))
                return self._json({})
            raise _HubError(404, f"this test server does not implement {self.command} {self.path}")

        @staticmethod
        def _tree(files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
            entries, folders = [], set()
            start = prefix + "/" if prefix else ""
            for path in sorted(files):
                if not path.startswith(start):
                    continue
                rest = path[len(start) :]
                if "/" in rest and not recursive:
                    folders.add(start + rest.split("/", 1)[0])
                    continue
                entries.append(_file_entry(path, files[path]))
            entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()} for f in folders]
            return entries

        def _resolve(self, repo_id: str, revision: str, path: str) -> None:
            repo = hub._repo(repo_id)
            commit = hub._commit_at(repo, revision)
            if path not in commit.files:
                raise _HubError(404, f"Entry not found: {path}", "EntryNotFound")
            content = commit.files[path]
            self._send(
                200,
                content,
                {
                    "Content-Type": "application/octet-stream",
                    "X-Repo-Commit": commit.sha,
                    "ETag": f'"{_etag(content)}"',
                },
            )

    return Handler
