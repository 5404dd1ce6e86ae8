"""aim's Shared Signals, checked by a third party: a receiver in this process takes the CAEP
Security Event Tokens aim pushes (RFC 8935) when an agent is cut off, and PyJWT verifies
them with nothing but aim's published JWKS.

Runs a real `aim serve` (AIM_BIN) with a `[[audit_sinks]]` of `kind = "caep"`. The receiver
refuses the first push (503), so the test also shows aim pushing the same SET again.
"""

import http.server
import json
import threading
import time
import unittest

import jwt

from test_tokens import Aim

AUDIENCE = "https://idp.example/ssf"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []
    refused_first = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body.decode()))
        if not Receiver.refused_first:
            Receiver.refused_first = True
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


class PyJwtVerifiesAimSignals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=cls.receiver.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{cls.receiver.server_address[1]}/ssf/push"
        cls.aim = Aim(f'[[audit_sinks]]\nkind = "caep"\nname = "idp"\nurl = "{url}"\naudience = "{AUDIENCE}"\n')
        cls.id, cls.key, cls.kid, cls.sponsor = cls.aim.agent("agt-signals", "watched by the IdP")
        _, meta = cls.aim.call("GET", "/.well-known/oauth-authorization-server")
        cls.issuer = meta["issuer"]
        cls.jwks = jwt.PyJWKClient(meta["jwks_uri"])

    @classmethod
    def tearDownClass(cls):
        cls.aim.close()
        cls.receiver.shutdown()

    def sets(self, event_type, at_least=1):
        deadline = time.time() + 20
        while time.time() < deadline:
            found = [(h, b) for h, b in Receiver.got if event_type in json.loads(
                jwt.api_jws.base64url_decode(b.split(".")[1].encode()))["events"]]
            if len(found) >= at_least:
                return found
            time.sleep(0.1)
        self.fail(f"no {event_type} arrived: {Receiver.got}")

    def verify(self, token):
        key = self.jwks.get_signing_key_from_jwt(token)
        self.assertEqual(jwt.get_unverified_header(token)["typ"], "secevent+jwt")
        return jwt.decode(token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=self.issuer)

    def test_a_lock_reaches_the_receiver_as_a_verifiable_session_revoked(self):
        status, locked = self.aim.call("POST", f"/v1/identities/{self.id}/lock", self.aim.admin,
                                       {"reason": "incident 42: exfiltration suspected"})
        self.assertEqual(status, 200, locked)
        pushed = self.sets(SESSION_REVOKED, at_least=2)
        (first_headers, first), (_, second) = pushed[0], pushed[1]
        self.assertEqual(first_headers["content-type"], "application/secevent+jwt")
        claims = self.verify(second)
        self.assertEqual(claims["jti"], self.verify(first)["jti"], "the refused push came again, same SET")
        self.assertEqual(claims["sub_id"], {"format": "uri", "uri": "spiffe://aim.local/agent/agt-signals"})
        event = claims["events"][SESSION_REVOKED]
        self.assertEqual(event["initiating_entity"], "admin")
        self.assertIn("incident 42", event["reason_admin"]["en"])
        # A SET changed in transit, or signed by another key, does not verify.
        head, body, sig = second.split(".")
        forged = json.loads(jwt.api_jws.base64url_decode(body.encode()))
        forged["sub_id"]["uri"] = "spiffe://aim.local/agent/someone-else"
        tampered = ".".join([head, jwt.api_jws.base64url_encode(json.dumps(forged).encode()).decode(), sig])
        with self.assertRaises(jwt.InvalidSignatureError):
            self.verify(tampered)

    def test_b_a_revoked_key_is_a_credential_change(self):
        status, revoked = self.aim.call("DELETE", f"/v1/identities/{self.id}/keys/{self.kid}", self.sponsor,
                                        {"reason": "key rotated after the incident"})
        self.assertEqual(status, 200, revoked)
        (_, token), = self.sets(CREDENTIAL_CHANGE)[-1:]
        event = self.verify(token)["events"][CREDENTIAL_CHANGE]
        self.assertEqual((event["change_type"], event["friendly_name"]), ("revoke", self.kid))


if __name__ == "__main__":
    unittest.main(verbosity=2)
