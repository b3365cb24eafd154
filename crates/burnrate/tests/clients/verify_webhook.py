"""Verifies webhook deliveries with the Standard Webhooks reference library (PyPI
`standardwebhooks`), an implementation independent of burnrate's.

Reads {"secret": "whsec_...", "deliveries": [{"headers": {...}, "body": "..."}]} on stdin and
prints one line per delivery: "ok", or "refused: <the library's reason>".
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
for delivery in request["deliveries"]:
    try:
        webhook.verify(delivery["body"], delivery["headers"])
        print("ok")
    except WebhookVerificationError as e:
        print(f"refused: {e}")
