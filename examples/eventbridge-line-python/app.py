"""A LINE bot in Python behind the chat gateway: an EventBridge rule sends it the LINE text
messages the gateway has verified, deduplicated and ordered, and it replies with the official
LINE SDK. Replace `reply_to` with your bot.

The event it receives is EventBridge's: `detail-type` is the gateway's type
(`line.message.text`) and `detail` the gateway's document, whose `event` is LINE's event exactly
as sent (or `null` with `event_claim` when it was too large for EventBridge: then it is read from
the gateway's claim-check bucket).
"""

import hashlib
import json
import os

from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    ReplyMessageRequest,
    TextMessage,
)

_configuration = None


def configuration():
    """The LINE client's configuration, built once per container."""
    global _configuration
    if _configuration is None:
        token = os.environ.get("LINE_CHANNEL_ACCESS_TOKEN")
        if not token:
            # The gateway's worker secret holds the token; only this key is read.
            import boto3

            secret = boto3.client("secretsmanager").get_secret_value(
                SecretId=os.environ["TOKEN_SECRET_ID"]
            )
            token = json.loads(secret["SecretString"])["LINE_CHANNEL_ACCESS_TOKEN"]
        _configuration = Configuration(
            access_token=token,
            host=os.environ.get("LINE_API_BASE_URL", "https://api.line.me"),
        )
    return _configuration


def line_event(detail):
    """LINE's event: inline, or from the claim-check bucket (checked against its hash)."""
    if detail.get("event") is not None:
        return detail["event"]
    claim = detail["event_claim"]
    import boto3

    body = boto3.client("s3").get_object(Bucket=claim["bucket"], Key=claim["key"])["Body"].read()
    if hashlib.sha256(body).hexdigest() != claim["sha256"]:
        raise ValueError(f"claim-check object {claim['key']} does not match its hash")
    return json.loads(body)


def reply_to(event):
    """The bot: answers a text message with its text."""
    return [TextMessage(text=event["message"]["text"])]


def handler(event, context):
    detail = event["detail"]
    line = line_event(detail)
    if line.get("mode") == "standby" or not line.get("replyToken"):
        return  # Another channel is active, or there is nothing to reply to.
    with ApiClient(configuration()) as client:
        try:
            MessagingApi(client).reply_message(
                ReplyMessageRequest(reply_token=line["replyToken"], messages=reply_to(line))
            )
        except ApiException as error:
            if error.status == 400:
                # An expired or used reply token: retrying cannot help. Log the id, not content.
                print(json.dumps({"reply_refused": detail["id"], "status": error.status}))
                return
            raise  # 429, 5xx: Lambda retries the asynchronous invocation.
