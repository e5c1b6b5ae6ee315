"""A bounded load generator for the fleet tests: a few clients send chat completions through the
router until stopped, or until their request budget or time limit runs out, and count failures."""
import threading
import time

import requests


class Load:
    def __init__(self, url, model, clients=4, max_requests=400, max_seconds=300, max_tokens=24):
        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.clients, self.max_requests, self.max_seconds = clients, max_requests, max_seconds
        self.ok, self.failures = 0, []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads = []

    def _client(self, index):
        deadline = time.monotonic() + self.max_seconds
        session = requests.Session()
        for n in range(self.max_requests // self.clients):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            body = {"model": self.model, "max_tokens": self.max_tokens,
                    "messages": [{"role": "user", "content": f"client {index} request {n}: what is a GPU?"}]}
            try:
                r = session.post(self.url + "/v1/chat/completions", json=body, timeout=60)
                good = r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
                failure = None if good else f"HTTP {r.status_code}: {r.text[:200]}"
            except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if failure:
                    self.failures.append((time.strftime("%H:%M:%S"), failure))
                else:
                    self.ok += 1

    def __enter__(self):
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=90)
        assert not any(t.is_alive() for t in self._threads), "a load client did not stop"
