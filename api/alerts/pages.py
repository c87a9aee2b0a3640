"""Alert list pages as sent, kept in the API process and keyed by what decides them.

A page is a function of the request (cursor, limit, filter, format) and of the published
alert watermark it stops at (`queries.alerts.seq`): every alert change takes a new change
number above the watermark, triage updates included, so the alerts with numbers up to it
are exactly those a page at that watermark shows. A request reads the watermark (one small
read) and is answered from here when a page was made at that same watermark for the same
request; any alert write or triage update publishes a higher one, and no cached page
matches it. The counter's epoch is part of the key, so a graph emptied and filled again
(its counter counting from 0 anew) never matches a page of the graph before.

Every reader sees every alert (the list is not narrowed by scope), so one page serves every
key with the read scope; a request without it is refused before it gets here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

# Bytes of rendered pages kept, all requests together: the least recently used go first.
BUDGET = 32 * 1024 * 1024


class AlertPages:
    """A least-recently-used map of rendered pages under a byte budget (thread-safe: the
    API's sync endpoints run in a thread pool)."""

    def __init__(self, budget: int = BUDGET) -> None:
        self._budget = budget
        self._used = 0
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._pages.get(key)
            if body is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self._budget // 4:
            return  # one page never crowds out the rest
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._used -= len(old)
            self._pages[key] = body
            self._used += len(body)
            while self._used > self._budget:
                _, dropped = self._pages.popitem(last=False)
                self._used -= len(dropped)
