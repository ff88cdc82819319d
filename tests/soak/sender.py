"""Signed webhook deliveries over real HTTP, retried on 5xx and connection errors as Jira does."""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from tests.jwt_helpers import host_token
from tests.soak.events import Delivery

PATH = "/webhooks/jira/issue_updated"
MAX_ATTEMPTS = 60
# Jira waits minutes between retries; a soak run cannot, so Retry-After is honoured up to this.
MAX_WAIT = 1.0


@dataclass
class Outcome:
    """What the sender saw: which deliveries were acknowledged, and every status it got."""

    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    given_up: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | str) -> None:
        with self.lock:
            self.statuses[status] += 1


class Sender:
    """Sends deliveries with `threads` concurrent senders; `progress` counts finished ones."""

    def __init__(self, base_url: str, client_key: str, secret: str, threads: int = 12) -> None:
        self.base_url, self.client_key, self.secret = base_url, client_key, secret
        self.threads = threads
        self.outcome = Outcome()
        self.done = 0
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def deliver(self, delivery: Delivery) -> None:
        """POST until a 2xx (acknowledged), a 4xx (refused) or MAX_ATTEMPTS."""
        for _ in range(MAX_ATTEMPTS):
            token = host_token(self.client_key, self.secret, "POST", PATH, sub=None)
            try:
                response = self._session().post(
                    self.base_url + PATH, json=delivery.body, timeout=30,
                    headers={"Authorization": f"JWT {token}",
                             "X-Atlassian-Webhook-Identifier": delivery.identifier})
            except requests.RequestException:
                self.outcome.record("connection error")
                time.sleep(MAX_WAIT)
                continue
            self.outcome.record(response.status_code)
            if 200 <= response.status_code < 300:
                with self.outcome.lock:
                    self.outcome.acknowledged.add(delivery.identifier)
                break
            if response.status_code < 500 and response.status_code != 429:
                break  # refused for good: not acknowledged, Jira would not retry either
            wait = float(response.headers.get("Retry-After", "1") or 1)
            time.sleep(min(wait, MAX_WAIT))
        else:
            with self.outcome.lock:
                self.outcome.given_up.append(delivery.identifier)
        with self.outcome.lock:
            self.done += 1

    def send_all(self, deliveries: list[Delivery]) -> Outcome:
        """Deliver everything (blocking)."""
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self.deliver, deliveries))
        return self.outcome
