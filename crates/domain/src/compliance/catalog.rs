//! The frameworks' entries, and the checks that answer each from aim's live data. Titles are
//! the frameworks' own (NIST's outcomes in their words); what aim cannot see (a model's
//! memory, physical access) says so instead of passing.

use crate::discovery::FindingKind as K;

use super::checks::{self as c, scope};
use super::{Control, Framework, Posture};

/// Findings on discovered accounts, under the NHI entry's label.
const OFFBOARDING: &[K] = &[K::Orphaned, K::Dormant, K::NeverUsed, K::ExpiredEnabled];
const PRIVILEGE: &[K] = &[K::OverPrivileged, K::PrivilegeAdded, K::UnusedPermissions];
const LONG_LIVED: &[K] = &[
    K::StaleCredential,
    K::NeverRotated,
    K::TwoActiveKeys,
    K::PasswordNeverExpires,
];

/// Every control of every framework, in the report's order.
pub fn controls(p: &Posture) -> Vec<Control> {
    let mut all = owasp_nhi(p);
    all.extend(owasp_agentic(p));
    all.extend(nist_csf(p));
    all.extend(nist_ai_rmf(p));
    all.extend(csa_maestro(p));
    all
}

fn owasp_nhi(p: &Posture) -> Vec<Control> {
    let f = |id, title, checks| Control::new(Framework::OwaspNhi, id, title, checks);
    let found = |label, kinds| c::findings(p, label, kinds);
    vec![
        f(
            "NHI1",
            "Improper Offboarding",
            vec![
                c::orphaned(p),
                c::past_end_of_life(p),
                c::dormant(p),
                found(
                    "discovered accounts orphaned, dormant, never used or expired",
                    OFFBOARDING,
                ),
            ],
        ),
        f(
            "NHI2",
            "Secret Leakage",
            vec![
                c::token_lifetime(p),
                c::bearer(p),
                found(
                    "one secret found in several places",
                    &[K::SharedAcrossEnvironments],
                ),
            ],
        ),
        f(
            "NHI3",
            "Vulnerable Third-Party NHI",
            vec![
                c::tool_pinning(p),
                found("one vendor's bot under several identities", &[K::Duplicate]),
            ],
        ),
        f(
            "NHI4",
            "Insecure Authentication",
            vec![
                c::bearer(p),
                found(
                    "accounts with weak authentication",
                    &[K::WeakAuthentication],
                ),
            ],
        ),
        f(
            "NHI5",
            "Overprivileged NHI",
            vec![
                c::policy(p),
                found("over-privileged discovered accounts", PRIVILEGE),
            ],
        ),
        f(
            "NHI6",
            "Insecure Cloud Deployment Configurations",
            vec![
                c::cloud_sources(p),
                found("cloud credentials that are static and stale", LONG_LIVED),
            ],
        ),
        f(
            "NHI7",
            "Long-Lived Secrets",
            vec![
                c::token_lifetime(p),
                found("stale, never-rotated or doubled credentials", LONG_LIVED),
            ],
        ),
        f(
            "NHI8",
            "Environment Isolation",
            vec![found(
                "one credential used in several environments",
                &[K::SharedAcrossEnvironments],
            )],
        ),
        f(
            "NHI9",
            "NHI Reuse",
            vec![
                c::duplicates(p),
                found("duplicate discovered accounts", &[K::Duplicate]),
            ],
        ),
        f(
            "NHI10",
            "Human Use of NHI",
            vec![found(
                "machine accounts used by people (console passwords, interactive logons)",
                &[K::HumanUse],
            )],
        ),
    ]
}

fn owasp_agentic(p: &Posture) -> Vec<Control> {
    let f = |id, title, checks| Control::new(Framework::OwaspAgentic, id, title, checks);
    vec![
        f(
            "ASI01",
            "Agent Goal Hijack",
            vec![
                c::token_lifetime(p),
                c::behaviour(p),
                scope(
                    "aim sees actions, not prompts",
                    "a hijacked goal shows up as the actions it causes: each is decided against the task's purpose and systems; prompt filtering is the agent's own",
                ),
            ],
        ),
        f(
            "ASI02",
            "Tool Misuse and Exploitation",
            vec![c::policy(p), c::tool_pinning(p), c::kill_switch(p)],
        ),
        f(
            "ASI03",
            "Identity and Privilege Abuse",
            vec![
                c::orphaned(p),
                c::bearer(p),
                c::delegation(p),
                c::unreviewed(p),
                c::findings(p, "over-privileged discovered accounts", PRIVILEGE),
            ],
        ),
        f(
            "ASI04",
            "Agentic Supply Chain Vulnerabilities",
            vec![
                c::tool_pinning(p),
                scope(
                    "aim pins tool definitions, not packages",
                    "MCP servers' definitions are pinned by hash at the gateway; their code and dependencies are checked elsewhere",
                ),
            ],
        ),
        f(
            "ASI05",
            "Unexpected Code Execution",
            vec![
                c::policy(p),
                scope(
                    "aim decides the call, not the code it runs",
                    "a tool call that would run code is decided and audited; sandboxing the code is the tool's host's job",
                ),
            ],
        ),
        f(
            "ASI06",
            "Memory & Context Poisoning",
            vec![
                c::audit_chain(p),
                scope(
                    "aim does not read an agent's memory",
                    "what a poisoned memory makes an agent do is decided and traced to its task; the memory itself is outside aim",
                ),
            ],
        ),
        f(
            "ASI07",
            "Insecure Inter-Agent Communication",
            vec![c::delegation(p), c::bearer(p)],
        ),
        f(
            "ASI08",
            "Cascading Failures",
            vec![c::kill_switch(p), c::behaviour(p)],
        ),
        f(
            "ASI09",
            "Human-Agent Trust Exploitation",
            vec![c::approvers(p), c::unreviewed(p)],
        ),
        f(
            "ASI10",
            "Rogue Agents",
            vec![c::behaviour(p), c::kill_switch(p), c::behaviour_locks(p)],
        ),
    ]
}

fn nist_csf(p: &Posture) -> Vec<Control> {
    let f = |id, title, checks| Control::new(Framework::NistCsf, id, title, checks);
    vec![
        f(
            "ID.AM-02",
            "Inventories of software, services, and systems managed by the organization are maintained",
            vec![c::inventory(p)],
        ),
        f(
            "PR.AA-01",
            "Identities and credentials for authorized users, services, and hardware are managed by the organization",
            vec![
                c::orphaned(p),
                c::past_end_of_life(p),
                c::attestation(p),
                c::findings(
                    p,
                    "discovered accounts orphaned, dormant, never used or expired",
                    OFFBOARDING,
                ),
                c::findings(p, "stale, never-rotated or doubled credentials", LONG_LIVED),
            ],
        ),
        f(
            "PR.AA-02",
            "Identities are proofed and bound to credentials based on the context of interactions",
            vec![c::unreviewed(p), c::bearer(p)],
        ),
        f(
            "PR.AA-03",
            "Users, services, and hardware are authenticated",
            vec![
                c::bearer(p),
                c::findings(
                    p,
                    "accounts with weak authentication",
                    &[K::WeakAuthentication],
                ),
            ],
        ),
        f(
            "PR.AA-04",
            "Identity assertions are protected, conveyed, and verified",
            vec![c::token_lifetime(p), c::delegation(p)],
        ),
        f(
            "PR.AA-05",
            "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and reviewed, and incorporate the principles of least privilege and separation of duties",
            vec![
                c::policy(p),
                c::approvers(p),
                c::unreviewed(p),
                c::findings(p, "over-privileged discovered accounts", PRIVILEGE),
            ],
        ),
        f(
            "PR.AA-06",
            "Physical access to assets is managed, monitored, and enforced commensurate with risk",
            vec![c::not_applicable(
                "physical access",
                "aim governs machine identities' logical access; physical access is out of its reach",
            )],
        ),
        f(
            "PR.PS-04",
            "Log records are generated and made available for continuous monitoring",
            vec![c::audit_chain(p), c::sinks(p)],
        ),
        f(
            "DE.CM-03",
            "Personnel activity and technology usage are monitored to find potentially adverse events",
            vec![
                c::behaviour(p),
                c::dormant(p),
                c::findings(
                    p,
                    "machine accounts used by people (console passwords, interactive logons)",
                    &[K::HumanUse],
                ),
            ],
        ),
        f(
            "RS.MI-01",
            "Incidents are contained",
            vec![c::kill_switch(p), c::behaviour(p)],
        ),
    ]
}

fn nist_ai_rmf(p: &Posture) -> Vec<Control> {
    let f = |id, title, checks| Control::new(Framework::NistAiRmf, id, title, checks);
    vec![
        f(
            "GOVERN 1.6",
            "Mechanisms are in place to inventory AI systems and are resourced according to organizational risk priorities",
            vec![c::inventory(p), c::attestation(p)],
        ),
        f(
            "GOVERN 1.7",
            "Processes and procedures are in place for decommissioning and phasing out AI systems safely",
            vec![
                c::past_end_of_life(p),
                c::dormant(p),
                c::findings(
                    p,
                    "discovered accounts orphaned, dormant, never used or expired",
                    OFFBOARDING,
                ),
            ],
        ),
        f(
            "GOVERN 2.1",
            "Roles and responsibilities and lines of communication related to mapping, measuring, and managing AI risks are documented and clear",
            vec![
                c::orphaned(p),
                c::approvers(p),
                c::findings(p, "discovered accounts with no known owner", &[K::Orphaned]),
            ],
        ),
        f(
            "GOVERN 6.1",
            "Policies and procedures are in place that address AI risks associated with third-party entities",
            vec![c::tool_pinning(p)],
        ),
        f(
            "MAP 1.1",
            "Intended purposes, potentially beneficial uses, context specific laws, norms and expectations, and prospective settings in which the AI system will be deployed are understood and documented",
            vec![c::purposes(p), c::inventory(p)],
        ),
        f(
            "MAP 5.1",
            "Likelihood and magnitude of each identified impact are identified and documented",
            vec![
                c::purposes(p),
                c::findings(p, "over-privileged discovered accounts", PRIVILEGE),
            ],
        ),
        f(
            "MEASURE 2.4",
            "The functionality and behavior of the AI system and its components are monitored when in production",
            vec![c::behaviour(p), c::audit_chain(p)],
        ),
        f(
            "MEASURE 2.7",
            "AI system security and resilience are evaluated and documented",
            vec![c::audit_chain(p), c::sinks(p)],
        ),
        f(
            "MANAGE 2.4",
            "Mechanisms are in place and applied, and responsibilities are assigned and understood, to supersede, disengage, or deactivate AI systems that demonstrate performance or outcomes inconsistent with intended use",
            vec![c::kill_switch(p), c::behaviour(p), c::orphaned(p)],
        ),
        f(
            "MANAGE 4.1",
            "Post-deployment AI system monitoring plans are implemented, including mechanisms for override, decommissioning, incident response, recovery, and change management",
            vec![c::attestation(p), c::behaviour_locks(p), c::sinks(p)],
        ),
    ]
}

fn csa_maestro(p: &Posture) -> Vec<Control> {
    let f = |id, title, checks| Control::new(Framework::CsaMaestro, id, title, checks);
    vec![
        f(
            "L3",
            "Agent Frameworks: compromised components and supply chain",
            vec![c::tool_pinning(p)],
        ),
        f(
            "L4",
            "Deployment and Infrastructure: lateral movement",
            vec![
                c::token_lifetime(p),
                c::findings(
                    p,
                    "credentials that cross environments or reach too far",
                    &[K::SharedAcrossEnvironments, K::OverPrivileged],
                ),
            ],
        ),
        f(
            "L5",
            "Evaluation and Observability: evasion of detection",
            vec![c::behaviour(p), c::sinks(p)],
        ),
        f(
            "L6",
            "Security and Compliance: access control and governance across layers",
            vec![c::policy(p), c::attestation(p), c::approvers(p)],
        ),
        f(
            "L7",
            "Agent Ecosystem: agent impersonation and identity attack",
            vec![c::bearer(p), c::orphaned(p), c::delegation(p)],
        ),
        f(
            "L7",
            "Agent Ecosystem: compromised agent registry",
            vec![c::unreviewed(p), c::audit_chain(p)],
        ),
        f(
            "L7",
            "Agent Ecosystem: agent tool misuse",
            vec![c::policy(p), c::tool_pinning(p), c::kill_switch(p)],
        ),
        f(
            "L7",
            "Agent Ecosystem: repudiation",
            vec![c::audit_chain(p), c::sinks(p)],
        ),
    ]
}
