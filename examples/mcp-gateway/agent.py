"""A small agent: an MCP client (the official Python SDK) that reaches the CRM server only
through `aim gateway`, with its aim token and a DPoP proof of its key on every request.

    python agent.py --gateway URL --token-file T --key-file K [--era legacy|2026-07-28] list
    python agent.py ... call TOOL '{"json": "arguments"}' [--expect OUTCOME]

OUTCOME is what the call must come to (`allowed`, `denied`, `approval_required`,
`refused`); the script exits 1 otherwise, so `run.sh` checks each step. An approval's id is
printed as `approval_id=<id>`.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time

import httpx2
import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DPoP(httpx2.Auth):
    """The token on every request, with a fresh proof of the agent's key (RFC 9449) for
    exactly that method and URL."""

    def __init__(self, token: str, key_pem: bytes):
        self.token = token
        self.key = load_pem_private_key(key_pem, password=None)
        x = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}

    def proof(self, method: str, url: str) -> str:
        claims = {
            "jti": os.urandom(12).hex(),
            "htm": method,
            "htu": url.split("?")[0].split("#")[0],
            "iat": int(time.time()),
            "ath": b64url(hashlib.sha256(self.token.encode()).digest()),
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"typ": "dpop+jwt", "jwk": self.jwk})

    def auth_flow(self, request):
        request.headers["Authorization"] = "DPoP " + self.token
        request.headers["DPoP"] = self.proof(request.method, str(request.url))
        yield request


def outcome(result) -> str:
    if not result.is_error:
        return "allowed"
    code = (result.meta or {}).get("aim/code", "")
    return "approval_required" if code == "approval_required" else "denied"


async def run(args) -> int:
    with open(args.token_file) as f:
        token = f.read().strip()
    with open(args.key_file, "rb") as f:
        auth = DPoP(token, f.read())
    http = httpx2.AsyncClient(auth=auth, timeout=15)
    try:
        async with Client(streamable_http_client(args.gateway, http_client=http), mode=args.era, cache=None) as c:
            if args.command == "list":
                tools = sorted(t.name for t in (await c.list_tools()).tools)
                print("tools:", ", ".join(tools) or "(none)")
                return 0
            result = await c.call_tool(args.tool, json.loads(args.arguments))
    except Exception as e:  # the gateway refused the request itself (401, 503, ...)
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        got, text = "refused", f"{type(e).__name__}: {e}"
    else:
        got = outcome(result)
        text = " ".join(getattr(b, "text", "") for b in result.content)
        approval = (result.meta or {}).get("aim/approval_id")
        if approval:
            print(f"approval_id={approval}")
    print(f"{args.tool}: {got}: {text}")
    if args.expect and got != args.expect:
        print(f"expected {args.expect}, got {got}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateway", required=True, help="the MCP endpoint through the gateway")
    p.add_argument("--token-file", required=True)
    p.add_argument("--key-file", required=True)
    p.add_argument("--era", default="legacy", help="legacy (2025-11-25) or 2026-07-28")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    call = sub.add_parser("call")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}")
    call.add_argument("--expect", choices=["allowed", "denied", "approval_required", "refused"])
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
