// TandemAudit: the audit log (docs/audit.md).
//
// Codemap:
// - AuditLog          the writer: bounded queue, one writer thread owning the SQLite connection,
//                     batching, hash chain and Merkle tree inside each transaction, signed tree heads
// - AuditEvent        what callers record: metadata in clear, content only as HMAC digests
// - AuditEntry        a stored entry; AuditEncoding / AuditFields: the canonical byte encoding
// - Merkle            RFC 6962 tree hashing, inclusion and consistency proofs, RFC 9162 verification
// - AuditTreeHead     signed tree heads; AuditWitness: the latest one outside the database
// - AuditKeys         content key (HMAC-SHA-256) and Ed25519 signing keys in 0600 files, rotation
// - AuditReader       verification (AuditVerifier), queries, JSON Lines, proofs, `match`
// - AuditProofs       proof files and their checking
// - AuditStore        schema, migrations, statements (on TandemSQLite, the thin wrapper over
//                     CSQLite; SQLite+AuditHash binds hashes)
//
// Invariants: only this module writes the audit tables; the SQLite connection of a log is used
// only on its writer thread; raw content is never stored, logged or put in an error message.
