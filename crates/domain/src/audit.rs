//! The hash chain over events: each event's hash covers its canonical encoding and the
//! previous event's hash, so editing, deleting, reordering or inserting a record breaks the
//! chain at that record.
//!
//! Canonical encoding: the event as a JSON object
//! `{"act"?,"action","actor":{"id","kind"},"at","detail","jti"?,"model_decision"?,"outcome","policies"?,"reason","request_id","seq","session_id"?,"source","target_id","target_type","task_id"?,"triggered_by"?}`
//! in RFC 8785 (JCS) form, where the keys marked `?` (the event's [`Trail`]) appear only
//! when not empty, as in the event's JSON form: keys sorted, no whitespace, minimal string escaping, integers in
//! decimal (`at` as milliseconds since the epoch). aim never writes floating-point numbers
//! into an event; a float found in `detail` is encoded with Rust's shortest round-trip form.
//! The hash is `SHA-256(prev_hash || canonical)`, and the first event's `prev_hash` is 32
//! zero bytes.

use sha2::{Digest, Sha256};

use crate::event::{Event, Trail};

/// The `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The RFC 8785 encoding of the hashed fields of `e`.
pub fn canonical(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + e.reason.len());
    let t: &Trail = &e.trail;
    // The fixed fields are written in JCS key order directly; only `detail` is generic.
    out.push(b'{');
    if !t.act.is_empty() {
        out.extend_from_slice(b"\"act\":[");
        for (i, a) in t.act.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            jcs_str(a, &mut out);
        }
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"action\":");
    jcs_str(e.action.as_str(), &mut out);
    out.extend_from_slice(b",\"actor\":{\"id\":");
    jcs_str(&e.actor.id, &mut out);
    out.extend_from_slice(b",\"kind\":");
    jcs_str(e.actor.kind.as_str(), &mut out);
    out.extend_from_slice(b"},\"at\":");
    out.extend_from_slice(e.at.as_millis().to_string().as_bytes());
    out.extend_from_slice(b",\"detail\":");
    jcs(&e.detail, &mut out);
    optional_str(b"jti", &t.jti, &mut out);
    if let Some(m) = &t.model_decision {
        out.extend_from_slice(b",\"model_decision\":{");
        let mut first = true;
        for (key, value) in [
            ("rationale", &m.rationale),
            ("tool_call_id", &m.tool_call_id),
        ] {
            if !value.is_empty() {
                if !first {
                    out.push(b',');
                }
                first = false;
                jcs_str(key, &mut out);
                out.push(b':');
                jcs_str(value, &mut out);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"outcome\":");
    jcs_str(e.outcome.as_str(), &mut out);
    if !t.policies.is_empty() {
        out.extend_from_slice(b",\"policies\":[");
        for (i, p) in t.policies.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            jcs_str(p, &mut out);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"reason\":");
    jcs_str(&e.reason, &mut out);
    out.extend_from_slice(b",\"request_id\":");
    jcs_str(&e.request_id, &mut out);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(e.seq.to_string().as_bytes());
    optional_str(b"session_id", &t.session_id, &mut out);
    out.extend_from_slice(b",\"source\":");
    jcs_str(&e.source, &mut out);
    out.extend_from_slice(b",\"target_id\":");
    jcs_str(&e.target_id, &mut out);
    out.extend_from_slice(b",\"target_type\":");
    jcs_str(&e.target_type, &mut out);
    optional_str(b"task_id", &t.task_id, &mut out);
    optional_str(b"triggered_by", &t.triggered_by, &mut out);
    out.push(b'}');
    out
}

/// `,"key":"value"`, or nothing when `value` is empty (the event omits it too).
fn optional_str(key: &[u8], value: &str, out: &mut Vec<u8>) {
    if !value.is_empty() {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        jcs_str(value, out);
    }
}

/// A JSON string as JCS (and ECMAScript's JSON.stringify) writes it: `"` and `\` escaped,
/// control characters as \b \f \n \r \t or lowercase \u00xx, everything else as UTF-8.
fn jcs_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// The RFC 8785 (JCS) form of any JSON value: equal values give equal bytes, whatever
/// order their maps keep.
pub fn canonical_value(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    jcs(v, &mut out);
    out
}

/// Appends the JCS form of `v`.
fn jcs(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => jcs_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                jcs(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // JCS sorts keys by their UTF-16 code units, whatever order the map keeps.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                jcs_str(k, out);
                out.push(b':');
                jcs(item, out);
            }
            out.push(b'}');
        }
    }
}

/// `SHA-256(prev || canonical(e))`.
pub fn chain_hash(prev: &[u8; 32], e: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(e));
    h.finalize().into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Why the chain is broken, at the first bad record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record {expected} is missing (the next record found is {found})")]
    Missing { expected: i64, found: i64 },
    #[error("record {seq} does not follow record {prev}: records were reordered or inserted")]
    Unlinked { seq: i64, prev: i64 },
    #[error("record {seq} was altered: its content does not match its hash")]
    Altered { seq: i64 },
    #[error(
        "the log ends at record {last}, but the chain head records {head}: the tail was truncated"
    )]
    Truncated { last: i64, head: i64 },
    #[error(
        "the log continues past the chain head ({head}) to record {last}: records were appended outside aim"
    )]
    PastHead { last: i64, head: i64 },
    #[error("record {seq} differs from the signed checkpoint: the log was rewritten")]
    CheckpointMismatch { seq: i64 },
}

impl ChainBreak {
    /// The first sequence number that cannot be trusted.
    pub fn first_bad(&self) -> i64 {
        match self {
            ChainBreak::Missing { expected, .. } => *expected,
            ChainBreak::Unlinked { seq, .. } | ChainBreak::Altered { seq } => *seq,
            ChainBreak::Truncated { last, .. } => last + 1,
            ChainBreak::PastHead { head, .. } => head + 1,
            ChainBreak::CheckpointMismatch { seq } => *seq,
        }
    }
}

/// A stored record: the event (whose `seq` is its position) and the hashes stored with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chained {
    pub event: Event,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Checks records one at a time, in sequence order, from the first.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_seq: i64,
    prev: [u8; 32],
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev: GENESIS,
        }
    }
}

impl Verifier {
    /// A verifier that expects record `next_seq` to follow a record whose hash is `prev`:
    /// for checking an export that starts part-way through the log.
    pub fn resume(next_seq: i64, prev: [u8; 32]) -> Self {
        Self { next_seq, prev }
    }

    pub fn push(&mut self, r: &Chained) -> Result<(), ChainBreak> {
        let seq = r.event.seq;
        if seq > self.next_seq {
            return Err(ChainBreak::Missing {
                expected: self.next_seq,
                found: seq,
            });
        }
        if seq < self.next_seq || r.prev_hash != self.prev {
            return Err(ChainBreak::Unlinked {
                seq,
                prev: self.next_seq - 1,
            });
        }
        if chain_hash(&r.prev_hash, &r.event) != r.hash {
            return Err(ChainBreak::Altered { seq });
        }
        self.prev = r.hash;
        self.next_seq = seq + 1;
        Ok(())
    }

    /// With a checkpoint: after record `checkpoint.seq` is pushed, its hash must match.
    pub fn check_checkpoint(&self, r: &Chained, checkpoint: &Checkpoint) -> Result<(), ChainBreak> {
        if r.event.seq == checkpoint.seq && to_hex(&r.hash) != checkpoint.hash {
            return Err(ChainBreak::CheckpointMismatch {
                seq: checkpoint.seq,
            });
        }
        Ok(())
    }

    /// With a checkpoint: the log must reach it.
    pub fn reaches(&self, checkpoint: &Checkpoint) -> Result<(), ChainBreak> {
        if self.verified() < checkpoint.seq {
            return Err(ChainBreak::Truncated {
                last: self.verified(),
                head: checkpoint.seq,
            });
        }
        Ok(())
    }

    /// How many records were verified.
    pub fn verified(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last verified record.
    pub fn head(&self) -> [u8; 32] {
        self.prev
    }

    /// Compares the end of the log with the head aim recorded (`head_seq`, `head_hash`).
    pub fn finish(&self, head_seq: i64, head_hash: &[u8; 32]) -> Result<i64, ChainBreak> {
        let last = self.verified();
        if last < head_seq {
            return Err(ChainBreak::Truncated {
                last,
                head: head_seq,
            });
        }
        if last > head_seq || &self.prev != head_hash {
            return Err(ChainBreak::PastHead {
                last,
                head: head_seq,
            });
        }
        Ok(last)
    }
}

/// A signed statement that record `seq` had hash `hash` at `at`, kept outside aim so that a
/// log rewritten or cut short later, chain head included, no longer matches it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    pub seq: i64,
    /// Hex.
    pub hash: String,
    pub at: crate::time::Timestamp,
    /// The Ed25519 public key that signed it, hex (32 bytes).
    pub public_key: String,
    /// Ed25519 over [`Checkpoint::message`], hex (64 bytes).
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: a fixed label, then `seq`, the hash and `at` (big-endian).
    pub fn message(seq: i64, hash: &[u8; 32], at: crate::time::Timestamp) -> Vec<u8> {
        let mut m = b"aim-audit-checkpoint-v1\0".to_vec();
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(hash);
        m.extend_from_slice(&at.as_millis().to_be_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use crate::event::AuditAction;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn chain(n: usize) -> Vec<Chained> {
        let mut prev = GENESIS;
        (1..=n as i64)
            .map(|seq| {
                let mut e = Event::new(
                    Timestamp::from_millis(seq * 1000),
                    Actor::system("test"),
                    AuditAction::TaskEnded,
                    "thing",
                    seq,
                )
                .reason(format!("reason {seq}"))
                .detail(serde_json::json!({ "n": seq, "b": [true, null], "a": "é\n" }));
                e.seq = seq;
                let hash = chain_hash(&prev, &e);
                let r = Chained {
                    event: e,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn verify(records: &[Chained]) -> Result<i64, ChainBreak> {
        let mut v = Verifier::default();
        for r in records {
            v.push(r)?;
        }
        Ok(v.verified())
    }

    #[test]
    fn canonical_form_is_jcs() {
        let mut e = Event::new(
            Timestamp::from_millis(5),
            Actor::system("s"),
            AuditAction::Decision,
            "t",
            "id",
        );
        e.seq = 7;
        e.detail = serde_json::json!({ "z": 1, "a": { "y": "\u{1f}\"", "b": [] } });
        let text = String::from_utf8(canonical(&e)).unwrap();
        assert_eq!(
            text,
            r#"{"action":"decision","actor":{"id":"s","kind":"system"},"at":5,"detail":{"a":{"b":[],"y":"\u001f\""},"z":1},"outcome":"success","reason":"","request_id":"","seq":7,"source":"","target_id":"id","target_type":"t"}"#
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(20);
        assert_eq!(verify(&c), Ok(20));
        let mut v = Verifier::default();
        c.iter().for_each(|r| v.push(r).unwrap());
        assert_eq!(v.finish(20, &c[19].hash), Ok(20));
        assert_eq!(
            v.finish(22, &c[19].hash),
            Err(ChainBreak::Truncated { last: 20, head: 22 })
        );
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_record() {
        let c = chain(10);
        let mut edited = c.clone();
        edited[4].event.reason = "nothing to see".into();
        assert_eq!(verify(&edited).unwrap_err().first_bad(), 5);

        let mut deleted = c.clone();
        deleted.remove(3);
        assert_eq!(
            verify(&deleted),
            Err(ChainBreak::Missing {
                expected: 4,
                found: 5
            })
        );

        let mut swapped = c.clone();
        swapped.swap(5, 6);
        assert_eq!(verify(&swapped).unwrap_err().first_bad(), 6);

        // A forged record inserted at 4, the later ones renumbered: the forgery does not
        // link to record 3's hash unless the forger also recomputed every hash after it.
        let mut inserted = c.clone();
        let mut forged = c[3].clone();
        forged.event.reason = "forged".into();
        forged.hash = chain_hash(&forged.prev_hash, &forged.event);
        inserted.insert(3, forged);
        for (i, r) in inserted.iter_mut().enumerate().skip(4) {
            r.event.seq = i as i64 + 1;
        }
        assert_eq!(verify(&inserted).unwrap_err().first_bad(), 5);
    }

    fn trail() -> impl Strategy<Value = Trail> {
        let text = "|[a-z]{1,6}|\\PC{0,6}";
        (
            proptest::collection::vec("\\PC{0,6}", 0..3),
            (text, text, text, text),
            proptest::collection::vec("[a-z.]{1,6}", 0..3),
            proptest::option::of((text, text)),
        )
            .prop_map(
                |(act, (task_id, session_id, jti, triggered_by), policies, m)| Trail {
                    act,
                    task_id,
                    session_id,
                    jti,
                    triggered_by,
                    policies,
                    model_decision: m.map(|(rationale, tool_call_id)| ModelDecisionT {
                        rationale,
                        tool_call_id,
                    }),
                },
            )
    }

    use crate::event::ModelDecision as ModelDecisionT;

    proptest! {
        /// The canonical form is the RFC 8785 form of exactly what the event serialises to
        /// (less its own hashes), whichever parts of its trail are set.
        #[test]
        fn canonical_form_is_jcs_of_the_serialised_event(t in trail(), reason in "\\PC{0,8}") {
            let mut e = chain(1).remove(0).event;
            e.trail = t;
            e.reason = reason;
            let mut value = serde_json::to_value(&e).unwrap();
            let object = value.as_object_mut().unwrap();
            object.remove("prev_hash");
            object.remove("hash");
            // The hashed form always has these, and `at` in milliseconds.
            object.insert("at".into(), e.at.as_millis().into());
            object.insert("request_id".into(), e.request_id.clone().into());
            object.insert("source".into(), e.source.clone().into());
            let mut expected = Vec::new();
            jcs(&value, &mut expected);
            prop_assert_eq!(String::from_utf8(canonical(&e)).unwrap(), String::from_utf8(expected).unwrap());
        }

        /// Strings are escaped exactly as serde_json (and so ECMAScript) escapes them.
        #[test]
        fn strings_escape_like_json(text in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
            let mut out = Vec::new();
            jcs_str(&text, &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::Value::String(text).to_string());
        }

        /// Any single changed byte of any text field of any record is caught at that record.
        #[test]
        fn any_edit_is_caught_where_it_is(at in 0usize..15, field in 0usize..6, text in "[a-z]{1,8}") {
            let mut c = chain(15);
            let e = &mut c[at].event;
            let target = match field {
                0 => &mut e.reason,
                4 => &mut e.trail.task_id,
                5 => &mut e.trail.jti,
                1 => &mut e.target_type,
                2 => &mut e.target_id,
                _ => &mut e.actor.id,
            };
            prop_assume!(*target != text);
            *target = text;
            prop_assert_eq!(verify(&c), Err(ChainBreak::Altered { seq: at as i64 + 1 }));
        }
    }

    #[test]
    fn hex_round_trip() {
        let h = chain(1)[0].hash;
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
    }
}
