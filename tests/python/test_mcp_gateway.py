"""`aim gateway` in front of an MCP server, end to end with the official MCP Python SDK
(`mcp` on PyPI) on both sides: a real `aim serve`, a real `aim gateway`, the CRM server in
`examples/mcp-gateway/crm_server.py`, and SDK clients whose HTTP auth hook signs a DPoP proof for each
request. Both protocol eras: the 2025-11-25 handshake and 2026-07-28.

What it shows: tools are hidden until an admin pins their definitions; `tools/list` is
filtered per caller (and private to it); an allowed call succeeds; a forbidden one is
denied; an approval-required one returns the approval id and goes through once after
approval; a request without a DPoP proof gets 401 with `resource_metadata`; a changed tool
definition is hidden and its calls denied until re-approved; a routing header that does
not match the body gets -32020; the server never sees the agent's token but does get the
injected key; a lock closes the agent's open stream and its next call is refused.
"""

import asyncio
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

import httpx2
import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from test_tokens import Aim, b64url

HERE = os.path.dirname(os.path.abspath(__file__))
API_KEY = "crm-key-" + os.urandom(8).hex()
ERAS = ["legacy", "2026-07-28"]

POLICY = """@id("read-for-all")
permit(principal, action == Aim::Action::"call_tool", resource is Aim::Tool)
when { resource.name == "read_record" };

@id("updates-for-a")
permit(principal, action == Aim::Action::"call_tool", resource is Aim::Tool)
when { resource.name == "update_record" && principal is Aim::Identity && principal.name == "agt-mcp-a" };

@id("writes-for-a")
permit(principal is Aim::Identity, action == Aim::Action::"write", resource is Aim::Resource)
when { principal.name == "agt-mcp-a" };

@id("payments") @approval("sponsor")
permit(principal, action == Aim::Action::"call_tool", resource is Aim::Tool)
when { resource.name == "pay" };
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """An approved agent with an Ed25519 key and a token for the gateway."""

    def __init__(self, aim, name, resource):
        self.name = name
        self.id, self.key, self.kid, self.sponsor = aim.agent(name, "CRM work through the gateway")
        self.x = b64url(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        self.token = self.task_token(aim, resource)

    def task_token(self, aim, resource, purpose="crm work"):
        """A token for `resource` on a new task of this agent's."""
        _, meta = aim.call("GET", "/.well-known/oauth-authorization-server")
        endpoint = meta["token_endpoint"]
        now = int(time.time())
        assertion = jwt.encode(
            {"iss": self.id, "sub": self.id, "aud": endpoint, "iat": now, "exp": now + 60,
             "jti": os.urandom(12).hex()},
            self.key, algorithm="EdDSA", headers={"kid": self.kid},
        )
        details = [{"type": "aim_task", "purpose": purpose, "systems": ["crm"], "triggered_by": "alice: T-1"}]
        status, body = aim.call(
            "POST", "/oauth/token",
            headers={"DPoP": self.proof("POST", endpoint)},
            form={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
                "authorization_details": json.dumps(details),
                "resource": resource,
            },
        )
        assert status == 200, (status, body)
        return body["access_token"]

    def proof(self, method, url, token=None):
        claims = {"jti": os.urandom(12).hex(), "htm": method, "htu": url, "iat": int(time.time())}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        return jwt.encode(claims, self.key, algorithm="EdDSA",
                          headers={"typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": self.x}})

    def headers(self, method, url, token=None):
        token = token or self.token
        return {"Authorization": "DPoP " + token, "DPoP": self.proof(method, url, token)}


class DPoP(httpx2.Auth):
    """The MCP client's auth hook: the agent's token, and a fresh proof for each request."""

    def __init__(self, agent):
        self.agent = agent

    def auth_flow(self, request):
        url = str(request.url).split("?")[0].split("#")[0]
        request.headers.update(self.agent.headers(request.method, url))
        yield request


class Stage:
    """Processes a test class starts (aim serve, gateways, servers), stopped after it."""

    @classmethod
    def setUpClass(cls):
        cls.procs = []
        try:
            cls.set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, args, env=None):
        proc = subprocess.Popen(args, env={**os.environ, "AIM_LOG": "warn", **(env or {})},
                                stdout=subprocess.DEVNULL)
        cls.procs.append(proc)
        return proc

    @classmethod
    def start_bao(cls):
        """A real OpenBao dev server (root token `root`); its URL."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cls.start([os.path.join(os.path.dirname(sys.executable), "bao"), "server", "-dev",
                   "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}", "-log-level=warn"])
        cls.wait_ready(url + "/v1/sys/health")
        return url

    @classmethod
    def start_gateway(cls, aim, gw_port, rest, env=None):
        """`aim gateway` on `gw_port` with its own gateway account, the rest of its
        configuration (upstreams, routes, MCP servers) in `rest`; its admin URL, once ready."""
        admin_port = free_port()
        _, gateway_secret = aim.human(f"gateway-{gw_port}@example.com", "gateway")
        secret_file = os.path.join(aim.dir.name, f"gateway-credential-{gw_port}")
        with open(secret_file, "w") as f:
            f.write(gateway_secret)
        config = os.path.join(aim.dir.name, f"gateway-{gw_port}.toml")
        with open(config, "w") as f:
            f.write(f"""
listen = "127.0.0.1:{gw_port}"
admin_listen = "127.0.0.1:{admin_port}"
resource = "http://127.0.0.1:{gw_port}"

[aim]
url = "{aim.base}"
credential_file = "{secret_file}"
""" + rest)
        cls.gateway = cls.start([os.environ["AIM_BIN"], "gateway", "--config", config], env=env)
        admin = f"http://127.0.0.1:{admin_port}"
        cls.wait_ready(admin + "/readyz")
        return admin

    @staticmethod
    def wait_ready(url, ok=(200,)):
        """Until `url` answers a GET (marked `x-probe`: not an agent's request) with `ok`."""
        parsed = urllib.parse.urlparse(url)
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
                conn.request("GET", parsed.path, headers={"x-probe": "readiness"})
                status = conn.getresponse().status
                conn.close()
                if status in ok:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} never became ready")

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            p.terminate()
            p.wait(timeout=10)
        if getattr(cls, "aim", None):
            cls.aim.close()


class McpThroughAimGateway(Stage, unittest.TestCase):
    @classmethod
    def set_up(cls):
        gw_port, mcp_port = free_port(), free_port()
        cls.resource = f"http://127.0.0.1:{gw_port}"
        cls.endpoint = cls.resource + "/mcp/crm"
        aim_admin = free_port()
        cls.aim_admin = f"http://127.0.0.1:{aim_admin}"
        cls.aim = aim = Aim(f'admin_listen = "127.0.0.1:{aim_admin}"\n[tokens]\nresources = ["{cls.resource}"]\n')
        cls.header_log = os.path.join(aim.dir.name, "headers.jsonl")
        cls.server = cls.start([sys.executable, os.path.join(HERE, "..", "..", "examples", "mcp-gateway", "crm_server.py"), str(mcp_port), cls.header_log],
                               env={"CRM_API_KEY": API_KEY})
        # The CRM's key lives in OpenBao (a real dev server), read by the gateway at use.
        cls.bao = cls.start_bao()
        cls.bao_put(API_KEY)
        cls.admin = cls.start_gateway(aim, gw_port, f"""
[upstreams.crm_mcp]
url = "http://127.0.0.1:{mcp_port}/mcp"
allow_addresses = ["127.0.0.1/32"]
credential = {{ kind = "header", name = "x-api-key", vault = {{ addr = "{cls.bao}", path = "secret/data/crm", field = "api_key", token_env = "BAO_TOKEN" }}, cache_ms = 0 }}

[mcp.crm]
upstream = "crm_mcp"
path = "/mcp/crm"

[[mcp.crm.tools]]
name = "update_record"
action = "write"
resource = {{ system = "crm", id = "crm/records/{{id}}", attrs = {{ type = "record", sensitivity = "internal" }} }}
""", env={"BAO_TOKEN": "root"})
        cls.wait_ready(f"http://127.0.0.1:{mcp_port}/mcp", ok=(401, 405, 406, 400))
        status, applied = aim.call("POST", "/v1/policies", aim.admin,
                                   {"sources": [{"name": "mcp.cedar", "text": POLICY}]})
        assert status == 201, (status, applied)
        cls.a = Agent(aim, "agt-mcp-a", cls.resource)
        cls.b = Agent(aim, "agt-mcp-b", cls.resource)

    @classmethod
    def bao_put(cls, value):
        """Writes the CRM key into OpenBao's KV v2 (`secret/crm`)."""
        parsed = urllib.parse.urlparse(cls.bao)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
        conn.request("POST", "/v1/secret/data/crm", body=json.dumps({"data": {"api_key": value}}),
                     headers={"X-Vault-Token": "root", "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read())
        conn.close()

    # -- helpers ----------------------------------------------------------------------

    def session(self, agent, era):
        transport = streamable_http_client(self.endpoint, http_client=httpx2.AsyncClient(auth=DPoP(agent), timeout=10))
        return Client(transport, mode=era, cache=None)

    def listed(self, agent, era):
        async def go():
            async with self.session(agent, era) as c:
                return sorted(t.name for t in (await c.list_tools()).tools)
        return asyncio.run(go())

    def call(self, agent, era, name, args):
        async def go():
            async with self.session(agent, era) as c:
                return await c.call_tool(name, args)
        return asyncio.run(go())

    def text(self, result):
        return " ".join(getattr(c, "text", "") for c in result.content)

    def aim_cli(self, *args):
        out = subprocess.run([os.environ["AIM_BIN"], "--addr", self.aim.base, "--token", self.aim.admin, *args],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def raw(self, headers, body):
        parsed = urllib.parse.urlparse(self.endpoint)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        conn.request("POST", parsed.path, body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
        resp = conn.getresponse()
        answer = resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
        conn.close()
        return answer

    def approve_all(self):
        tools = json.loads(self.aim_cli("-o", "json", "tool", "list", "--server", "crm"))
        for t in tools:
            if t["state"] != "approved":
                self.aim_cli("tool", "approve", f"crm/{t['name']}", "--hash", t["seen"]["hash"])

    # -- the scenario, in order -------------------------------------------------------

    def test_1_tools_are_hidden_until_an_admin_pins_them(self):
        self.assertEqual(self.listed(self.a, "legacy"), [], "nothing is approved yet")
        tools = json.loads(self.aim_cli("-o", "json", "tool", "list"))
        self.assertEqual(sorted(t["name"] for t in tools), ["pay", "purge", "read_record", "update_record"])
        self.assertTrue(all(t["state"] == "new" for t in tools), tools)
        self.approve_all()
        self.assertIn("approved", self.aim_cli("tool", "list"))

    def test_2_each_era_filters_decides_and_asks_for_approval(self):
        for era in ERAS:
            with self.subTest(era=era):
                self.assertEqual(self.listed(self.a, era), ["pay", "read_record", "update_record"])
                self.assertEqual(self.listed(self.b, era), ["pay", "read_record"])
                ok = self.call(self.a, era, "read_record", {"id": "42"})
                self.assertFalse(ok.is_error, self.text(ok))
                self.assertIn("Ada Lovelace", self.text(ok))
                wrote = self.call(self.a, era, "update_record", {"id": "42", "field": "status", "value": era})
                self.assertFalse(wrote.is_error, self.text(wrote))
                denied = self.call(self.b, era, "update_record", {"id": "42", "field": "status", "value": "x"})
                self.assertTrue(denied.is_error)
                self.assertIn("denied by policy", self.text(denied))
                purge = self.call(self.a, era, "purge", {})
                self.assertTrue(purge.is_error)
                self.assertEqual(purge.meta["aim/code"], "deny")
                self.approval_goes_through_once(era)

    def approval_goes_through_once(self, era):
        args = {"invoice": f"INV-{era}", "amount": 120}
        held = self.call(self.b, era, "pay", args)
        self.assertTrue(held.is_error)
        approval = held.meta["aim/approval_id"]
        self.assertIn(approval, self.text(held), "the model reads the approval id")
        status, decided = self.aim.call("POST", f"/v1/approvals/{approval}/approve", self.b.sponsor, {"reason": "invoice checked"})
        self.assertEqual(status, 200, decided)
        paid = self.call(self.b, era, "pay", args)
        self.assertFalse(paid.is_error, self.text(paid))
        self.assertIn(f"paid 120", self.text(paid))
        again = self.call(self.b, era, "pay", args)
        self.assertTrue(again.is_error, "an approval lets exactly one call through")
        self.assertNotEqual(again.meta["aim/approval_id"], approval)

    def test_3_no_proof_is_401_with_resource_metadata(self):
        status, headers, _ = self.raw({"Authorization": "DPoP " + self.a.token},
                                      {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        self.assertEqual(status, 401)
        self.assertIn(f'resource_metadata="{self.resource}/.well-known/oauth-protected-resource"',
                      headers["www-authenticate"])
        status, _, _ = self.raw({}, {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        self.assertEqual(status, 401)

    def test_4_routing_headers_must_match_the_body_and_origins_be_ours(self):
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "read_record", "arguments": {"id": "42"}, "_meta": meta}}
        headers = {**self.a.headers("POST", self.endpoint), "MCP-Protocol-Version": "2026-07-28",
                   "Mcp-Method": "tools/call", "Mcp-Name": "pay"}
        status, _, raw = self.raw(headers, body)
        self.assertEqual(status, 400)
        answer = json.loads(raw)
        self.assertEqual((answer["id"], answer["error"]["code"]), (9, -32020), answer)
        # A browser page on another origin is refused before anything else.
        headers = {**self.a.headers("POST", self.endpoint), "Origin": "https://evil.example"}
        status, _, raw = self.raw(headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        self.assertEqual((status, json.loads(raw)["code"]), (403, "origin_not_allowed"))
        headers = {**self.a.headers("POST", self.endpoint), "Origin": self.resource}
        init = {"jsonrpc": "2.0", "id": 2, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
        status, _, raw = self.raw(headers, init)
        self.assertEqual(status, 200, raw)

    def test_5_a_changed_definition_is_hidden_and_refused_until_approved_again(self):
        self.server.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        for era in ERAS:
            with self.subTest(era=era):
                self.assertEqual(self.listed(self.a, era), ["pay", "update_record"])
                refused = self.call(self.a, era, "read_record", {"id": "42"})
                self.assertTrue(refused.is_error)
                self.assertEqual(refused.meta["aim/code"], "tool_not_approved")
        diff = self.aim_cli("tool", "diff", "crm/read_record")
        self.assertIn("crm/read_record: changed", diff)
        self.assertIn("+", diff)
        self.assertIn("attacker.example", diff)
        self.approve_all()
        self.assertEqual(self.listed(self.a, "legacy"), ["pay", "read_record", "update_record"])

    def test_6_the_server_gets_the_injected_key_never_the_agents_token(self):
        with open(self.header_log) as f:
            seen = [h for h in map(json.loads, f) if "x-probe" not in h]
        self.assertGreater(len(seen), 10)
        for headers in seen:
            self.assertEqual(headers.get("x-api-key"), API_KEY)
            self.assertNotIn("dpop", headers)
            self.assertNotIn(self.a.token, json.dumps(headers))
            self.assertNotIn(self.b.token, json.dumps(headers))
        # The key comes from OpenBao at the moment of use: a wrong one there, and the
        # server refuses the gateway's call; the right one again, and it goes through.
        self.bao_put("not-the-key")
        status, _, _ = self.raw({**self.a.headers("POST", self.endpoint)},
                                {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                 "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                            "clientInfo": {"name": "raw", "version": "1"}}})
        self.assertEqual(status, 401, "the server refused the wrong key from OpenBao")
        self.bao_put(API_KEY)
        self.assertEqual(self.listed(self.a, "legacy"), ["pay", "read_record", "update_record"])

    def test_7_a_lock_closes_the_open_stream_and_refuses_the_next_call(self):
        c = Agent(self.aim, "agt-mcp-c", self.resource)
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "raw", "version": "1"}}}
        status, headers, _ = self.raw(c.headers("POST", self.endpoint), init)
        self.assertEqual(status, 200)
        session = headers["mcp-session-id"]
        common = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        status, _, _ = self.raw({**c.headers("POST", self.endpoint), **common},
                                {"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.assertEqual(status, 202)
        parsed = urllib.parse.urlparse(self.endpoint)
        stream = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=15)
        stream.request("GET", parsed.path, headers={**c.headers("GET", self.endpoint), **common,
                                                     "Accept": "text/event-stream"})
        opened = stream.getresponse()
        self.assertEqual(opened.status, 200)
        status, locked = self.aim.call("POST", f"/v1/identities/{c.id}/lock", self.aim.admin, {"reason": "incident 7"})
        self.assertEqual(status, 200, locked)
        started = time.monotonic()
        while opened.read1(65536):
            pass
        self.assertLess(time.monotonic() - started, 10, "the stream ended when the lock was heard")
        stream.close()
        status, _, raw = self.raw({**c.headers("POST", self.endpoint), **common},
                                  {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        self.assertEqual(status, 401, raw)
        self.assertEqual(json.loads(raw)["code"], "token_revoked")

    def scrape(self, base):
        parsed = urllib.parse.urlparse(base)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        self.assertTrue(resp.getheader("content-type").startswith("application/openmetrics-text"))
        return text

    def test_8_prometheus_sees_what_happened(self):
        text = self.scrape(self.admin)
        for line in [
            'aim_gateway_requests_total{kind="mcp",outcome="refused",status="401",code="token_revoked"}',
            'aim_gateway_requests_total{kind="mcp",outcome="refused",status="400",code="jsonrpc_-32020"} 1',
            'aim_gateway_decision_seconds_count{call="authorize"}',
            'aim_gateway_upstream_seconds_count{upstream="crm_mcp"}',
            "aim_gateway_stale 0",
        ]:
            self.assertIn(line, text)
        # And aim's own admin listener: the gateway's decisions, the tokens, the lock.
        text = self.scrape(self.aim_admin)
        for line in [
            'aim_decisions_total{effect="allow",via="gateway"}',
            'aim_decisions_total{effect="deny",via="gateway"}',
            'aim_decisions_total{effect="approval_required",via="gateway"}',
            'aim_decision_seconds_count{via="gateway"}',
            "aim_tokens_issued_total 3",
            "aim_locks_total 1",
            "aim_gateways_connected 1",
            "aim_gateways_behind 0",
        ]:
            self.assertIn(line, text)
        self.assertRegex(text, r"aim_revocation_epoch [1-9]")


if __name__ == "__main__":
    unittest.main(verbosity=2)
