#!/usr/bin/env python3
"""Throughput of `ouroboros serve` under 1, 4 and 16 concurrent clients, on loopback.

Each client sends completion requests back to back (a different prompt each time, greedy) until
it has sent --requests or --seconds have passed, whichever comes first; every answer must be a
200. Prints one row per concurrency: requests, generated tokens, wall seconds, requests/s,
tokens/s and the median latency. Standard library only.

  ouroboros serve --port 8080 &          # the bundled model, or --model DIR
  python3 benches/serve_load.py --url http://127.0.0.1:8080/v1 --model ouro-code-tiny
"""

import argparse
import json
import statistics
import threading
import time
import urllib.request

PROMPTS = [
    "def fibonacci(n):\n",
    "class LRUCache:\n    def __init__(self, capacity):\n",
    "def parse_config(path):\n    with open(path) as f:\n",
    "def mean(items):\n",
]


def one(url, model, prompt, tokens, steps):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": tokens, "steps": steps}).encode()
    req = urllib.request.Request(url + "/completions", body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        answer = json.load(r)
        assert r.status == 200, answer
    return time.perf_counter() - started, answer["usage"]["completion_tokens"]


def run(args, clients):
    latencies, tokens, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + args.seconds
    per_client = max(1, args.requests // clients)

    def client(k):
        for i in range(per_client):
            if time.perf_counter() > deadline:
                return
            prompt = PROMPTS[(k + i) % len(PROMPTS)] + f"    # {k}.{i}\n"
            seconds, n = one(args.url, args.model, prompt, args.tokens, args.steps)
            with lock:
                latencies.append(seconds)
                tokens[0] += n

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return len(latencies), tokens[0], wall, statistics.median(latencies)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080/v1")
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=32, help="per concurrency level, in all")
    ap.add_argument("--seconds", type=float, default=120.0, help="per concurrency level")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    one(args.url, args.model, PROMPTS[0], args.tokens, args.steps)  # warm-up
    print("| clients | requests | tokens | wall s | requests/s | tok/s | median latency s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients in [int(c) for c in args.clients.split(",")]:
        n, tokens, wall, median = run(args, clients)
        print(f"| {clients} | {n} | {tokens} | {wall:.1f} | {n / wall:.2f} | {tokens / wall:.1f} | {median:.2f} |")


if __name__ == "__main__":
    main()
