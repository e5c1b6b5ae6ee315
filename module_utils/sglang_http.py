"""HTTP for the project's modules (sglang_probe, sglang_rollover): a parsed URL, one connection with the bearer key,
and a short reason when a request got no answer. Python's standard library only (it runs on the managed host).

Errors are HTTPURLError (a URL the modules cannot use); each module turns it into its own error type."""
import json
import socket
from http.client import HTTPConnection, HTTPSConnection
from urllib.parse import urlsplit


class HTTPURLError(ValueError):
    """A URL that is not http(s)://host[:port][/path]."""


def snippet(raw, limit=300):
    """The first `limit` characters of a body, on one line."""
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")


def why(exc, timeout, host):
    """Why a request got no answer, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "timed out after %g s" % timeout
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host %s" % host
    return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__


class Base:
    """A base URL: its parts, and its path as the prefix of every request's path."""

    def __init__(self, url):
        self.parts = urlsplit(url)
        if self.parts.scheme not in ("http", "https") or not self.parts.hostname:
            raise HTTPURLError("url %r (expected http://host:port)" % url)
        self.prefix = self.parts.path.rstrip("/")

    def connect(self, timeout):
        cls = HTTPSConnection if self.parts.scheme == "https" else HTTPConnection
        return cls(self.parts.hostname, self.parts.port, timeout=timeout)

    def why(self, exc, timeout):
        return why(exc, timeout, self.parts.hostname)


def request_body(api_key, body=None):
    """(headers, encoded body) of a request: the bearer key if there is one (never echoed), JSON if a body."""
    headers = {"Authorization": "Bearer " + api_key} if api_key else {}
    if body is None:
        return headers, None
    headers["Content-Type"] = "application/json"
    return headers, json.dumps(body).encode("utf-8")
