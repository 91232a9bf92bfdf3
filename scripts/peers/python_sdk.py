#!/usr/bin/env python3
"""The official LINE SDK for Python: WebhookParser.parse (signature check + parse into models),
on the LINE bodies. Prints one JSON line per body: {"name", "ops_per_s"}."""
import json, os, sys, time
from linebot.v3.webhook import WebhookParser

folder = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
# The best of ROUNDS counts, as every harness of scripts/bench-peers.sh counts.
rounds = max(1, int(sys.argv[3])) if len(sys.argv) > 3 else 1
manifest = json.load(open(os.path.join(folder, "manifest.json")))
parser = WebhookParser(manifest["secret"])
for body in manifest["bodies"]:
    if body["platform"] != "line":
        continue
    text = open(os.path.join(folder, body["file"]), encoding="utf-8").read()
    signature = body["line_signature"]
    assert len(parser.parse(text, signature)) >= 1
    end = time.perf_counter() + seconds / 4
    while time.perf_counter() < end:
        parser.parse(text, signature)
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            parser.parse(text, signature)
            count += 1
        best = max(best, count / (time.perf_counter() - start))
    print(json.dumps({"name": body["name"], "ops_per_s": best}))
