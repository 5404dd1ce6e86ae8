-- Each compliance report as it was generated (aim_domain::compliance::Evaluation, JSON):
-- the posture's trend is its scores over time, and an old report can be read again as it
-- was. scores: each framework's score (JSON), so the trend is read without the reports.
CREATE TABLE compliance_reports (
    id UUID PRIMARY KEY,
    generated_at BIGINT NOT NULL,
    generated_by TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    scores TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX compliance_reports_by_time ON compliance_reports (generated_at);
