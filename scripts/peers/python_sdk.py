#!/usr/bin/env python3
"""The official LINE SDK for Python: WebhookParser.parse (signature check + parse into models),
on the LINE bodies. Prints one JSON line per body: {"name", "ops_per_s"}."""
import json, os, sys, time
from linebot.v3.webhook import WebhookParser

folder = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
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
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        parser.parse(text, signature)
        count += 1
    print(json.dumps({"name": body["name"], "ops_per_s": count / (time.perf_counter() - start)}))
