"""bench_http.py — what the python3 ports of the server benchmarks
(followup_ttft.py, budget_storm.py, agent_replay.py) share: their argument
parsing, JSON printed the way node's JSON.stringify prints it (compact,
non-ASCII as is, integral numbers without ".0", NaN as null), the prompt
generators' arithmetic done in IEEE doubles exactly as the .mjs originals do
it (so both send byte-identical prompts), and HTTP over http.client with
streamed reads (read1: each read returns what has arrived, like a fetch
body reader). Standard library only: these run where node is not installed.
"""
import codecs
import http.client
import json
import math
import time
import urllib.parse

# Long enough for a cold prefill of a big prompt on a slow machine.
HTTP_TIMEOUT_S = 3600


def parse_args(argv, flags_take_next=True):
    """--name value pairs into a dict. flags_take_next: the value is always
    the next word (followup_ttft.mjs, budget_storm.mjs); else a flag followed
    by another --flag or nothing is "1" (agent_replay.mjs)."""
    out = {}
    for i, a in enumerate(argv):
        if not a.startswith("--"):
            continue
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if flags_take_next:
            out[a[2:]] = nxt
        else:
            out[a[2:]] = nxt if nxt is not None and not nxt.startswith("--") else "1"
    return out


def num(x, digits=None):
    """JavaScript's +x.toFixed(digits) as JSON.stringify prints it: rounded,
    an integral value as an int, NaN/None as None (null)."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return None
    v = round(x, digits) if digits is not None else x
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def dumps(obj):
    """JSON.stringify(obj): compact, non-ASCII characters as they are."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def lcg(x):
    """(x * 1103515245 + 12345) % 2147483648 evaluated in doubles, as JavaScript
    does (the product passes 2^53 and rounds; the .mjs prompts depend on it)."""
    return math.fmod(float(x) * 1103515245.0 + 12345.0, 2147483648.0)


def js_slice(s, n):
    """s.slice(0, n) in UTF-16 code units, as JavaScript counts them."""
    units = s.encode("utf-16-le", "surrogatepass")
    return units[: 2 * n].decode("utf-16-le", "surrogatepass")


def now_ms():
    return time.perf_counter() * 1000.0


class Server:
    """A base URL (http://host:port) to open connections to."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"--url must be http://host:port, got {url!r}")
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")

    def request(self, method, path, body=None):
        """Sends the request; returns (connection, response) with the body
        unread (close the connection when done)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT_S)
        headers = {}
        data = None
        if body is not None:
            data = dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn.request(method, self.prefix + path, body=data, headers=headers)
        return conn, conn.getresponse()

    def get_text(self, path):
        conn, resp = self.request("GET", path)
        try:
            return resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def get_json(self, path):
        return json.loads(self.get_text(path))

    def post(self, path, body):
        """(status, text) of a whole, unstreamed answer."""
        conn, resp = self.request("POST", path, body)
        try:
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def metric(self, name):
        """The value of a /metrics line "name value" (NaN when absent)."""
        for line in self.get_text("/metrics").split("\n"):
            if line.startswith(name + " "):
                v = float(line.split(" ")[1])
                return int(v) if v.is_integer() else v
        return float("nan")


def read_chunks(resp):
    """The body as it arrives, decoded (like a fetch body reader)."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            tail = dec.decode(b"", final=True)
            if tail:
                yield tail
            return
        yield dec.decode(chunk)
