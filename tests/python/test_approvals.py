"""aim's approval webhook, checked by a third party: the official Standard Webhooks library
(`standardwebhooks` on PyPI) verifies the signature of the announcement aim sends when an
agent's action needs a human's approval.

Runs a real `aim serve` (AIM_BIN) with `[approvals] webhook_url` pointing at a receiver
in this process; an agent with an Ed25519 key (PyJWT-signed assertion and DPoP proofs)
asks `POST /v1/authorize` for an action a policy marks `@approval("sponsor")`.
"""

import base64
import hashlib
import http.server
import json
import os
import threading
import time
import unittest

import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from test_tokens import Aim, b64url

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
POLICY = """@id("refunds") @approval("sponsor")
permit(principal, action == Aim::Action::"write", resource is Aim::Resource);
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class StandardWebhooksVerifiesAimApprovals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=cls.receiver.serve_forever, daemon=True).start()
        hook = f"http://127.0.0.1:{cls.receiver.server_address[1]}/hook"
        cls.aim = Aim(f'[approvals]\nwebhook_url = "{hook}"\nwebhook_secret = "{SECRET}"\n')
        aim = cls.aim
        cls.client_id, cls.key, cls.kid, _ = aim.agent("agt-refunds", "refunds, with a human's approval")
        cls.x = b64url(cls.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        status, meta = aim.call("GET", "/.well-known/oauth-authorization-server")
        assert status == 200
        cls.token_endpoint = meta["token_endpoint"]
        status, applied = aim.call(
            "POST", "/v1/policies", aim.admin, {"sources": [{"name": "refunds.cedar", "text": POLICY}]}
        )
        assert status == 201, (status, applied)

    @classmethod
    def tearDownClass(cls):
        cls.aim.close()
        cls.receiver.shutdown()

    def proof(self, method, url, token=None):
        claims = {"jti": os.urandom(12).hex(), "htm": method, "htu": url, "iat": int(time.time())}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        return jwt.encode(
            claims,
            self.key,
            algorithm="EdDSA",
            headers={"typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": self.x}},
        )

    def access_token(self):
        now = int(time.time())
        assertion = jwt.encode(
            {"iss": self.client_id, "sub": self.client_id, "aud": self.token_endpoint,
             "iat": now, "exp": now + 60, "jti": os.urandom(12).hex()},
            self.key,
            algorithm="EdDSA",
            headers={"kid": self.kid},
        )
        details = [{"type": "aim_task", "purpose": "refund", "systems": ["crm"], "triggered_by": "alice: T-9"}]
        status, body = self.aim.call(
            "POST",
            "/oauth/token",
            headers={"DPoP": self.proof("POST", self.token_endpoint)},
            form={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
                "authorization_details": json.dumps(details),
            },
        )
        assert status == 200, (status, body)
        return body["access_token"]

    def test_the_approval_webhook_verifies_with_standard_webhooks(self):
        token = self.access_token()
        url = self.aim.base + "/v1/authorize"
        status, decision = self.aim.call(
            "POST",
            "/v1/authorize",
            headers={"Authorization": "DPoP " + token, "DPoP": self.proof("POST", url, token)},
            body={
                "action": "write",
                "resource": {"type": "Resource", "id": "crm/refunds/7", "system": "crm",
                             "attrs": {"type": "refund", "sensitivity": "internal"}},
                "call": {"args_hash": "sha256:" + hashlib.sha256(b'{"amount": 120}').hexdigest()},
            },
        )
        self.assertEqual((status, decision["decision"]), (200, "approval_required"), decision)
        approval = decision["approval_id"]

        deadline = time.time() + 60  # a deadline for the delivery, not a timing
        while not Receiver.got and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(Receiver.got), 1, "one announcement")
        headers, body = Receiver.got[0]
        payload = Webhook(SECRET).verify(body, headers)
        self.assertEqual(payload["type"], "approval.requested")
        self.assertEqual(payload["data"]["id"], approval)
        self.assertEqual(payload["data"]["approvers"], ["sponsor"])
        self.assertEqual(headers["webhook-id"], "msg_" + approval)
        # Any change to the body, or another secret, fails verification.
        with self.assertRaises(WebhookVerificationError):
            Webhook(SECRET).verify(body.replace(b"sponsor", b"nobody!"), headers)
        with self.assertRaises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(os.urandom(32)).decode()).verify(body, headers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
