//! Federated workload tokens (`jwt-bearer`): an issuer's JWKS served on loopback, RS256 and
//! ES256 workload tokens traded for aim tokens, the issuer's key rotation picked up, and
//! each bad token refused with its code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aim_testkit::{Backend, TestServer};
use aim_token::client::ClientKey;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::fixtures::{ClockExt, active_identity, cast, code};

const ISSUER: &str = "https://k8s.cluster.test";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const WORKLOAD: &str = "system:serviceaccount:claims:triage";

/// The issuer's JWKS, served at `/jwks` on loopback; the test swaps its content.
async fn jwks_server(keys: Arc<Mutex<Value>>) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/jwks")
}

/// `n` and `e` of an RSA public key in DER (`SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8], at: &mut usize) -> Vec<u8> {
        let tag = der[*at];
        *at += 1;
        let mut len = der[*at] as usize;
        *at += 1;
        if len & 0x80 != 0 {
            let n = len & 0x7f;
            len = 0;
            for _ in 0..n {
                len = (len << 8) | der[*at] as usize;
                *at += 1;
            }
        }
        let body = der[*at..*at + len].to_vec();
        *at += if tag == 0x30 { 0 } else { len };
        body
    }
    let mut at = 0;
    let seq = read(der, &mut at);
    let mut inner = 0;
    let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    let n = strip(read(&seq, &mut inner));
    let e = strip(read(&seq, &mut inner));
    (n, e)
}

fn rsa_sign(key: &RsaKeyPair, kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", B64.encode(sig))
}

#[tokio::test]
async fn workload_tokens_from_a_trusted_issuer() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let (n, e) = rsa_components(rsa.public_key().as_ref());
        let keys = Arc::new(Mutex::new(json!({ "keys": [
            { "kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": B64.encode(&n), "e": B64.encode(&e) },
            { "kty": "oct", "kid": "ignored", "k": "c2VjcmV0" },
        ]})));
        let jwks_url = jwks_server(keys.clone()).await;
        let s = TestServer::start_with(backend, |config| {
            config.tokens.federation = vec![aim_server::config::FederationConfig {
                issuer: ISSUER.into(),
                jwks_url: jwks_url.clone(),
                audience: "aim".into(),
                claim: "sub".into(),
                identities: BTreeMap::from([(WORKLOAD.to_owned(), "agt-fed-a".to_owned())]),
                refetch_seconds: 0,
                ca_file: None,
            }];
        })
        .await;
        let c = cast(&s).await;
        let identity = active_identity(&s, &c, "agt-fed-a").await;
        let now = s.clock_now().as_millis() / 1000;
        let claims = |sub: &str, aud: &str, exp: i64| json!({ "iss": ISSUER, "sub": sub, "aud": [aud], "iat": now, "exp": exp });
        let endpoint = format!("{}/oauth/token", s.base);
        let holder = ClientKey::generate("EdDSA").unwrap();
        let details = json!([{ "type": "aim_task", "purpose": "nightly triage", "systems": ["crm"], "triggered_by": "cron: nightly" }]).to_string();
        let exchange = |assertion: String| {
            let client = s.client(None);
            let proof = holder.dpop_proof("POST", &endpoint, None, now).unwrap();
            let details = details.clone();
            async move {
                client
                    .oauth_token(
                        &[
                            ("grant_type", GRANT),
                            ("assertion", &assertion),
                            ("authorization_details", &details),
                        ],
                        Some(&proof),
                    )
                    .await
                    .map(|r| serde_json::to_value(r).unwrap())
            }
        };

        let r = exchange(rsa_sign(&rsa, "rsa-1", &claims(WORKLOAD, "aim", now + 600)))
            .await
            .unwrap();
        assert_eq!(r["token_type"], "DPoP");
        let v = s
            .admin
            .introspect(r["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(v.client_id, Some(identity.id.to_string()));
        assert_eq!(
            v.cnf.as_ref().map(|c| &c["jkt"]),
            Some(&json!(holder.kid()))
        );

        // Each bad workload token, with its code.
        let cases = [
            (
                rsa_sign(
                    &rsa,
                    "rsa-1",
                    &claims("system:serviceaccount:x:y", "aim", now + 600),
                ),
                "unknown_workload",
            ),
            (
                rsa_sign(&rsa, "rsa-1", &claims(WORKLOAD, "someone-else", now + 600)),
                "wrong_audience",
            ),
            (
                rsa_sign(&rsa, "rsa-1", &claims(WORKLOAD, "aim", now - 1)),
                "token_expired",
            ),
            (
                rsa_sign(&rsa, "rsa-2", &claims(WORKLOAD, "aim", now + 600)),
                "unknown_kid",
            ),
            (
                rsa_sign(&rsa, "ignored", &claims(WORKLOAD, "aim", now + 600)),
                "unknown_kid",
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(code(exchange(token).await), expected);
        }
        let mut foreign = claims(WORKLOAD, "aim", now + 600);
        foreign["iss"] = json!("https://evil.test");
        assert_eq!(
            code(exchange(rsa_sign(&rsa, "rsa-1", &foreign)).await),
            "unknown_issuer"
        );
        // A token signed by one key under another's kid.
        let other = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let forged = rsa_sign(&other, "rsa-1", &claims(WORKLOAD, "aim", now + 600));
        assert_eq!(code(exchange(forged).await), "bad_signature");

        // The issuer rotates to an ES256 key: the new kid makes aim fetch the JWKS again.
        let es = ClientKey::generate("ES256").unwrap();
        let mut jwk = es.public().to_json();
        jwk["kid"] = json!("es-2");
        keys.lock().unwrap()["keys"]
            .as_array_mut()
            .unwrap()
            .push(jwk);
        let token = es
            .sign(
                json!({ "typ": "JWT", "kid": "es-2" }),
                &claims(WORKLOAD, "aim", now + 600),
            )
            .unwrap();
        exchange(token).await.unwrap();
        s.stop().await;
    }
}
