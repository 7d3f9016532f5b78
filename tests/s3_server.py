"""Test helpers: moto's real S3 server on 127.0.0.1, and a counting, fault-injecting proxy.

    with S3Server() as s3:
        s3.upload(folder, "fcp-indi", "data/Projects/HBN/BIDS_EEG/cmi_bids_R1")
        with S3Proxy(s3.endpoint) as proxy:      # point TOOLKIT_S3__ENDPOINT_URL at proxy.endpoint
            proxy.fail_next_gets(2, status=503)  # the next two object GETs answer 503
            ...
            assert proxy.object_gets("participants.tsv") == 1

The server accepts unsigned (anonymous) requests, so clients may use `anon=True`; uploads are
signed with dummy credentials (moto checks none by default).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-2",
}


class S3Server:
    """moto's threaded server on a free port of 127.0.0.1 (in this process, stopped on exit).

    moto keeps its buckets in process-wide state that outlives a server, so each server starts
    empty (its state is reset on entry and on exit): tests in one session never see another
    module's objects."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def __enter__(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.reset()
        finally:
            self._server.stop()

    def reset(self) -> None:
        """Empty every bucket of moto's in-process state (moto's own reset endpoint)."""
        conn = http.client.HTTPConnection(urlsplit(self.endpoint).netloc, timeout=30)
        try:
            conn.request("POST", "/moto-api/reset")
            status = conn.getresponse().status
        finally:
            conn.close()
        if status != 200:
            raise RuntimeError(f"moto reset answered {status} at {self.endpoint}")

    def client(self):  # -> botocore S3 client
        """A signed boto3 S3 client for setting up buckets."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **DUMMY_CREDENTIALS)

    def upload(self, folder: Path, bucket: str, prefix: str = "") -> list[str]:
        """Upload every file under `folder` to s3://bucket/prefix/...; returns the keys, sorted."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": DUMMY_CREDENTIALS["region_name"]},
            )
        keys = []
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            key = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ACL="public-read")
            keys.append(key)
        return keys


@dataclass(frozen=True)
class Request:
    """One request seen by the proxy, and the status it answered."""

    method: str
    path: str  # without the query string
    query: str
    status: int
    signed: bool  # carried an Authorization header (False: an anonymous request)


class S3Proxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of `upstream` that logs every request and
    can answer the next K object GETs with an error status (a transient S3 failure)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.requests: list[Request] = []
        self._fail_gets = 0
        self._fail_status = 503
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail_next_gets(self, count: int, status: int = 503) -> None:
        """Answer the next `count` object GETs (not listings) with `status`."""
        with self._lock:
            self._fail_gets = count
            self._fail_status = status

    def object_gets(self, key_suffix: str = "", status: int | None = 200) -> int:
        """How many object-body GETs (not listings) for keys ending in `key_suffix` were
        answered with `status` (2xx counts as 200; None counts every status)."""
        return sum(
            1
            for r in self._object_gets()
            if r.path.endswith(key_suffix) and (status is None or _same_status(r.status, status))
        )

    def _object_gets(self) -> list[Request]:
        with self._lock:
            seen = list(self.requests)
        # An object path has a key after the bucket (/bucket/key); listings are /bucket?list-type=2
        return [r for r in seen if r.method == "GET" and r.path.strip("/").count("/") >= 1]

    def _take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            if method == "GET" and path.strip("/").count("/") >= 1 and self._fail_gets > 0:
                self._fail_gets -= 1
                return self._fail_status
            return None

    def _log(self, method: str, target: str, status: int, signed: bool) -> None:
        path, _, query = target.partition("?")
        with self._lock:
            self.requests.append(Request(method, path, query, status, signed))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _signed(self) -> bool:
                return "Authorization" in self.headers

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                failure = proxy._take_failure(self.command, self.path.partition("?")[0])
                if failure is not None:
                    payload = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable'
                        b"</Code><Message>injected by S3Proxy</Message></Error>"
                    )
                    self.send_response(failure)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy._log(self.command, self.path, failure, self._signed())
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    headers = dict(self.headers.items())
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for key, value in resp.getheaders():
                        if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                            self.send_header(key, value)
                    # HEAD answers carry the object's length but no body.
                    length_header = resp.getheader("Content-Length")
                    if self.command == "HEAD" and length_header is not None:
                        self.send_header("Content-Length", length_header)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    proxy._log(self.command, self.path, resp.status, self._signed())
                finally:
                    conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        return Handler


def _same_status(seen: int, wanted: int) -> bool:
    return 200 <= seen < 300 if wanted == 200 else seen == wanted
