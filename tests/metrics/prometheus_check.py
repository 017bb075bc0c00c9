"""Prometheus HTTP API helpers for the integration tests (see prometheus_lib.sh)."""
import json
import sys
import time
import urllib.parse
import urllib.request


class Prom:
    """Queries one Prometheus server; every wait is bounded by `budget_s` in total."""

    def __init__(self, api, budget_s):
        self.api = api
        self.deadline = time.monotonic() + budget_s
        self.passed = 0
        self.failed = 0

    def time_left(self):
        return time.monotonic() < self.deadline

    def get(self, path, **params):
        url = self.api + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)["data"]

    def wait_up(self):
        """Waits until every target is up; FAIL + exit 1 if not within the budget."""
        health = "none"
        while self.time_left():
            try:
                health = ",".join(t["health"] for t in self.get("/targets")["activeTargets"])
            except Exception:  # noqa: BLE001 - Prometheus still starting
                pass
            if health == "up":
                break
            time.sleep(0.5)
        if health != "up":
            print(f"FAIL: Prometheus never scraped the target (health: {health})")
            sys.exit(1)
        print("PASS: Prometheus scraped the target (health up)")

    def values(self, promql, retry_empty=True):
        """The instant query's sample values; retried briefly while empty (a scrape's samples
        become queryable once appended)."""
        got = []
        while self.time_left():
            got = [float(r["value"][1]) for r in self.get("/query", query=promql)["result"]]
            if got or not retry_empty:
                break
            time.sleep(0.5)
        return got

    def check(self, ok, line):
        print(("PASS: " if ok else "FAIL: ") + line)
        self.passed += bool(ok)
        self.failed += not ok

    def check_value(self, promql, want, note=""):
        """One series whose value equals `want` (relative 1e-9)."""
        got = self.values(promql)
        ok = len(got) == 1 and abs(got[0] - want) <= 1e-9 * max(1.0, abs(want))
        line = f"{promql} = {got[0] if len(got) == 1 else got}"
        if not ok:
            line += f", want {want}" + (f" ({note})" if note else "")
        self.check(ok, line)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(0 if self.failed == 0 else 1)
