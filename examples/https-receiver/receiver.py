"""A minimal receiver for the gateway's HTTPS destination (Standard Webhooks).

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python receiver.py --port 8000

Point the gateway at it (locally: chat-gateway serve --destination https
--destination-url http://127.0.0.1:8000/webhook, with DESTINATION_SIGNING_SECRETS set to the
same secret). In production, serve it behind HTTPS and put your bot where `handle` is.

What it shows:
- the signature is verified over the exact body bytes, with the timestamp checked (5 minutes), by
  the Standard Webhooks library; a bad one is answered 401 (the gateway then dead-letters the event:
  a wrong secret is a configuration error, not a reason to retry);
- `webhook-id` is the event's deduplication key: the gateway already sends each event once, but
  answering 2xx again for an id you have seen keeps your side exactly-once too;
- answer 2xx only when the event is handled; 5xx (or 408, 409, 429, a timeout) makes the gateway
  retry, and the conversation's next event waits until this one is acknowledged.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

SEEN = set()  # Use your database in production: ids outlive a process.


def handle(document):
    """Your bot goes here. `document["event"]` is the platform's event, exactly as sent."""
    event = document["event"] or {}
    message = event.get("message") or {}
    # Log what routes the event, never its content.
    print(
        json.dumps(
            {
                "received": document["type"],
                "id": document["id"],
                "conversation": document["conversation"],
                "message_id": message.get("id") or message.get("mid"),
            }
        ),
        flush=True,
    )


class Receiver(BaseHTTPRequestHandler):
    webhook = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            document = self.webhook.verify(body, dict(self.headers))
        except WebhookVerificationError as error:
            print(json.dumps({"refused": str(error)}), flush=True)
            return self.answer(401)
        if document["id"] in SEEN:
            return self.answer(204)
        handle(document)
        SEEN.add(document["id"])
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass  # One line per event above is enough.


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        sys.exit("set WEBHOOK_SECRET to the gateway's signing secret (whsec_...)")
    Receiver.webhook = Webhook(secret)
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_port}/webhook", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
