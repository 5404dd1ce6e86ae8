"""aim's access tokens, checked by a third party: PyJWT verifies a token aim issued with
nothing but aim's published JWKS and its standard API.

Runs a real `aim serve` (the binary named by AIM_BIN) on a fresh data dir, sets up a
sponsor, an approver and an approved agent with an Ed25519 key, gets a token with a
PyJWT-signed client assertion (private_key_jwt), and verifies it. `.ci/run` runs this in a
venv with PyJWT[crypto].
"""

import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Aim:
    def __init__(self, config=None):
        self.dir = tempfile.TemporaryDirectory()
        args = [os.environ["AIM_BIN"], "serve", "--listen", "127.0.0.1:0"]
        if config is not None:
            path = os.path.join(self.dir.name, "aim.toml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        self.proc = subprocess.Popen(
            args,
            cwd=self.dir.name,
            stdout=subprocess.PIPE,
            env={**os.environ, "AIM_LOG": "warn"},
            text=True,
        )
        first = self.proc.stdout.readline()
        assert first.startswith("aim listening on "), first
        self.base = "http://" + first.split()[3].removeprefix("http://")
        with open(os.path.join(self.dir.name, "aim-data", "bootstrap-admin-token")) as f:
            self.admin = f.read().strip()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.dir.cleanup()

    def call(self, method, path, token=None, body=None, form=None, headers=None):
        headers = dict(headers or {})
        data = None
        if token:
            headers["Authorization"] = "Bearer " + token
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def human(self, user, role):
        status, h = self.call("POST", "/v1/humans", self.admin, {"user_name": user, "roles": [role]})
        assert status == 201, (status, h)
        status, c = self.call("POST", f"/v1/humans/{h['id']}/credentials", self.admin, {"label": "test"})
        assert status == 201, (status, c)
        return h, c["secret"]

    def agent(self, name, purpose):
        """An approved autonomous agent on the crm with a fresh Ed25519 key registered:
        (client_id, private key, kid, sponsor's credential)."""
        sponsor, sponsor_token = self.human(f"sponsor-of-{name}@example.com", "sponsor")
        _, approver_token = self.human(f"approver-of-{name}@example.com", "approver")
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
        status, identity = self.call(
            "POST",
            "/v1/identities",
            sponsor_token,
            {
                "name": name,
                "kind": "ai_agent",
                "autonomy": "autonomous",
                "sponsor_id": sponsor["id"],
                "purpose": purpose,
                "systems": ["crm"],
                "data_sensitivity": "internal",
                "criticality": "low",
                "impact": "low",
                "expires_at": expires,
            },
        )
        assert status == 201, (status, identity)
        status, identity = self.call("POST", f"/v1/identities/{identity['id']}/approve", approver_token, {"reason": "ok"})
        assert status == 200, (status, identity)
        key = Ed25519PrivateKey.generate()
        x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        status, registered = self.call(
            "POST",
            f"/v1/identities/{identity['id']}/keys",
            sponsor_token,
            {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}, "label": "python"},
        )
        assert status == 201, (status, registered)
        return identity["id"], key, registered["kid"], sponsor_token


class PyJwtVerifiesAimTokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.aim = Aim()
        aim = cls.aim
        cls.client_id, cls.key, cls.kid, _ = aim.agent("agt-pyjwt", "checks tokens from Python")
        status, cls.metadata = aim.call("GET", "/.well-known/oauth-authorization-server")
        assert status == 200

    @classmethod
    def tearDownClass(cls):
        cls.aim.close()

    def assertion(self, **override):
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.metadata["token_endpoint"],
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        claims.update(override)
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def dpop(self, method, url, **override):
        """An RFC 9449 proof signed with PyJWT, the public key in its header."""
        x = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        claims.update(override)
        return jwt.encode(
            claims,
            self.key,
            algorithm="EdDSA",
            headers={"typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}},
        )

    def token(self, assertion, proof=None):
        details = [{"type": "aim_task", "purpose": "lookup", "systems": ["crm"], "triggered_by": "alice: T-1"}]
        if proof is None:
            proof = self.dpop("POST", self.metadata["token_endpoint"])
        return self.aim.call(
            "POST",
            "/oauth/token",
            headers={"DPoP": proof} if proof else {},
            form={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
                "authorization_details": json.dumps(details),
            },
        )

    def test_pyjwt_verifies_the_access_token_from_jwks(self):
        status, body = self.token(self.assertion())
        self.assertEqual(status, 200, body)
        token = body["access_token"]
        header = jwt.get_unverified_header(token)
        self.assertEqual(header["typ"], "at+jwt")
        self.assertEqual(header["alg"], "EdDSA")
        jwks = jwt.PyJWKClient(self.metadata["jwks_uri"])
        key = jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience="aim",
            issuer=self.metadata["issuer"],
            options={"require": ["exp", "iat", "nbf", "aud", "iss", "sub", "jti"]},
        )
        self.assertEqual(claims["client_id"], self.client_id)
        self.assertEqual(claims["sub"], "spiffe://aim.local/agent/agt-pyjwt")
        self.assertEqual(claims["scope"], "crm")
        self.assertEqual(claims["aim_task"], body["task_id"])
        # Bound to the agent's key: cnf.jkt is its RFC 7638 thumbprint.
        self.assertEqual(body["token_type"], "DPoP")
        self.assertEqual(claims["cnf"]["jkt"], self.kid)
        self.assertLessEqual(claims["exp"] - claims["iat"], 300)

        # The checks bite: wrong audience, expiry, a flipped signature byte.
        with self.assertRaises(jwt.InvalidAudienceError):
            jwt.decode(token, key, algorithms=["EdDSA"], audience="someone-else")
        with self.assertRaises(jwt.ExpiredSignatureError):
            # Seen from 400 s later (a negative leeway), the token has expired.
            jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience="aim",
                leeway=-400,
                options={"verify_iat": False, "verify_nbf": False},
            )
        head, payload, sig = token.split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(f"{head}.{payload}.{flipped}", key, algorithms=["EdDSA"], audience="aim")

    def test_aim_refuses_what_it_should(self):
        replayed = self.assertion()
        self.assertEqual(self.token(replayed)[0], 200)
        status, body = self.token(replayed)
        self.assertEqual((status, body["code"], body["error"]), (401, "replayed", "invalid_client"))
        status, body = self.token(self.assertion(exp=int(time.time()) - 10))
        self.assertEqual((status, body["code"]), (401, "token_expired"))
        hs = jwt.encode({"iss": self.client_id}, "secret", algorithm="HS256", headers={"kid": self.kid})
        status, body = self.token(hs)
        self.assertEqual((status, body["code"]), (401, "alg_not_allowed"))
        # DPoP: required for this autonomous agent, and checked.
        status, body = self.token(self.assertion(), proof="")
        self.assertEqual((status, body["error"], body["code"]), (400, "invalid_dpop_proof", "dpop_required"))
        stale = self.dpop("POST", self.metadata["token_endpoint"], iat=int(time.time()) - 600)
        status, body = self.token(self.assertion(), proof=stale)
        self.assertEqual((status, body["code"]), (400, "dpop_stale"))


class KeyFilesOtherToolsRead(unittest.TestCase):
    """`aim identity key generate` writes PKCS#8 PEM (RFC 8410 for Ed25519) that Python's
    `cryptography` loads, mode 0600; needs no server."""

    def test_cryptography_loads_aim_key_files(self):
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        with tempfile.TemporaryDirectory() as d:
            for alg, kind in (("EdDSA", Ed25519PrivateKey), ("ES256", EllipticCurvePrivateKey)):
                path = os.path.join(d, f"{alg}.pem")
                subprocess.run(
                    [os.environ["AIM_BIN"], "identity", "key", "generate", "--alg", alg, "--out", path],
                    check=True,
                    capture_output=True,
                )
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, alg)
                with open(path, "rb") as f:
                    key = load_pem_private_key(f.read(), password=None)
                self.assertIsInstance(key, kind, alg)


if __name__ == "__main__":
    unittest.main(verbosity=2)
