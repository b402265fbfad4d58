// Proof files: inclusion and consistency proofs as JSON, checkable without the database.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TandemCrypto

/// A signed tree head in JSON (hashes and signature in hex).
public struct AuditTreeHeadJSON: Codable, Sendable, Equatable {
    public var treeSize: UInt64
    public var timeMicros: Int64
    public var time: String
    public var root: String
    public var chainHead: String
    public var keyID: String
    public var signature: String
    /// The signer's public key (hex), for convenience; a checker must still decide to trust it.
    public var publicKey: String?

    public init(_ h: AuditTreeHead, publicKey: AuditPublicKey?) {
        treeSize = h.treeSize
        timeMicros = h.timeMicros
        time = AuditTime.format(micros: h.timeMicros)
        root = h.root.hex
        chainHead = h.chainHead.hex
        keyID = h.keyID
        signature = Hex.encode(h.signature)
        self.publicKey = publicKey.map { Hex.encode($0.bytes) }
    }

    /// The tree head, or nil when a field is malformed.
    public var treeHead: AuditTreeHead? {
        guard let r = AuditHash(hex: root), let c = AuditHash(hex: chainHead), let s = Hex.decode(signature), s.count == 64 else { return nil }
        return AuditTreeHead(treeSize: treeSize, timeMicros: timeMicros, root: r, chainHead: c, keyID: keyID, signature: s)
    }
}

/// Proof that one entry is in the log as of a signed tree head. Self-contained: it carries the
/// entry's canonical encoding, so a checker recomputes the entry hash, the leaf hash and the
/// root, and checks the tree head's signature.
public struct AuditInclusionProof: Codable, Sendable, Equatable {
    public var format = "tandem-audit-inclusion-proof-v1"
    public var seq: UInt64
    /// The canonical encoding of the entry (hex).
    public var entryEncoding: String
    public var prevHash: String
    public var entryHash: String
    public var treeHead: AuditTreeHeadJSON
    /// RFC 6962 audit path, from the leaf up (hex).
    public var path: [String]
}

/// Proof that the tree of `oldHead` is a prefix of the tree of `newHead`: nothing before
/// `oldHead.treeSize` was changed, removed or inserted between the two heads.
public struct AuditConsistencyProof: Codable, Sendable, Equatable {
    public var format = "tandem-audit-consistency-proof-v1"
    public var oldHead: AuditTreeHeadJSON
    public var newHead: AuditTreeHeadJSON
    /// RFC 6962 consistency proof nodes (hex).
    public var path: [String]
}

/// The result of checking a proof file.
public struct AuditProofCheck: Sendable, Equatable {
    /// "inclusion" or "consistency".
    public var kind: String
    /// What was proved, in words.
    public var summary: String
    /// Whether every signature was made by a trusted key (false: valid only under the key
    /// embedded in the proof).
    public var signaturesTrusted: Bool
}

public enum AuditProofs {
    /// Encodes a proof as pretty-printed JSON.
    public static func encode(_ p: some Encodable) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? enc.encode(p) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Checks a proof file (either kind).
    ///
    /// - Parameters:
    ///   - trustedKeys: Public keys to accept signatures from. When empty, a signature that
    ///     verifies under the public key embedded in the proof is accepted and the result says
    ///     `signaturesTrusted: false`.
    /// - Throws: ``AuditError`` `.badProof` with the reason when the proof does not verify.
    public static func check(_ json: [UInt8], trustedKeys: [AuditPublicKey]) throws(AuditError) -> AuditProofCheck {
        struct Probe: Decodable { var format: String }
        let dec = JSONDecoder()
        let data = Data(json)
        guard let probe = try? dec.decode(Probe.self, from: data) else { throw AuditError(.badProof, "not a proof file (no \"format\")") }
        switch probe.format {
        case "tandem-audit-inclusion-proof-v1":
            do {
                return try check(dec.decode(AuditInclusionProof.self, from: data), trustedKeys: trustedKeys)
            } catch let e as AuditError {
                throw e
            } catch {
                throw AuditError(.badProof, "malformed inclusion proof: \(error)")
            }
        case "tandem-audit-consistency-proof-v1":
            do {
                return try check(dec.decode(AuditConsistencyProof.self, from: data), trustedKeys: trustedKeys)
            } catch let e as AuditError {
                throw e
            } catch {
                throw AuditError(.badProof, "malformed consistency proof: \(error)")
            }
        default:
            throw AuditError(.badProof, "unknown proof format \(probe.format)")
        }
    }

    /// Checks a tree head's signature; returns whether the key was a trusted one.
    static func checkSignature(_ j: AuditTreeHeadJSON, trustedKeys: [AuditPublicKey]) throws(AuditError) -> (AuditTreeHead, Bool) {
        guard let head = j.treeHead else { throw AuditError(.badProof, "tree head \(j.treeSize) is malformed") }
        if let key = trustedKeys.first(where: { $0.id == head.keyID }) {
            guard head.verify(with: key) else { throw AuditError(.badProof, "tree head \(head.treeSize): bad signature") }
            return (head, true)
        }
        guard trustedKeys.isEmpty else { throw AuditError(.badProof, "tree head \(head.treeSize) is signed by untrusted key \(head.keyID)") }
        guard let pkHex = j.publicKey, let pkBytes = Hex.decode(pkHex), let pk = AuditPublicKey(bytes: pkBytes), pk.id == head.keyID else {
            throw AuditError(.badProof, "tree head \(head.treeSize): no trusted key and no matching embedded public key")
        }
        guard head.verify(with: pk) else { throw AuditError(.badProof, "tree head \(head.treeSize): bad signature") }
        return (head, false)
    }

    public static func check(_ p: AuditInclusionProof, trustedKeys: [AuditPublicKey]) throws(AuditError) -> AuditProofCheck {
        let (head, trusted) = try checkSignature(p.treeHead, trustedKeys: trustedKeys)
        guard let enc = Hex.decode(p.entryEncoding), let prev = AuditHash(hex: p.prevHash), let claimed = AuditHash(hex: p.entryHash) else {
            throw AuditError(.badProof, "malformed entry fields")
        }
        guard let entry = AuditEncoding.decode(enc), entry.seq == p.seq else {
            throw AuditError(.badProof, "the entry encoding is malformed or is not entry \(p.seq)")
        }
        let h = SHA256Context()
        let entryHash = enc.withUnsafeBytes { h.chain(prev, $0) }
        guard entryHash == claimed else { throw AuditError(.badProof, "SHA-256(prevHash || encoding) is not the stated entry hash") }
        var path: [AuditHash] = []
        for x in p.path {
            guard let v = AuditHash(hex: x) else { throw AuditError(.badProof, "malformed path node") }
            path.append(v)
        }
        guard p.seq >= 1, Merkle.verifyInclusion(leafHash: h.leaf(entryHash), leafIndex: p.seq - 1, treeSize: head.treeSize, proof: path, root: head.root)
        else { throw AuditError(.badProof, "the audit path does not lead to the signed root of tree head \(head.treeSize)") }
        return AuditProofCheck(
            kind: "inclusion",
            summary: "entry \(p.seq) (\(entry.action) by \(entry.actor.id) at \(AuditTime.format(micros: entry.timeMicros))) is in tree head \(head.treeSize) signed by \(head.keyID)",
            signaturesTrusted: trusted)
    }

    public static func check(_ p: AuditConsistencyProof, trustedKeys: [AuditPublicKey]) throws(AuditError) -> AuditProofCheck {
        let (old, t1) = try checkSignature(p.oldHead, trustedKeys: trustedKeys)
        let (new, t2) = try checkSignature(p.newHead, trustedKeys: trustedKeys)
        var path: [AuditHash] = []
        for x in p.path {
            guard let v = AuditHash(hex: x) else { throw AuditError(.badProof, "malformed path node") }
            path.append(v)
        }
        guard Merkle.verifyConsistency(oldSize: old.treeSize, newSize: new.treeSize, oldRoot: old.root, newRoot: new.root, proof: path) else {
            throw AuditError(.badProof, "tree head \(old.treeSize) is not a prefix of tree head \(new.treeSize)")
        }
        return AuditProofCheck(
            kind: "consistency", summary: "tree head \(old.treeSize) is a prefix of tree head \(new.treeSize)", signaturesTrusted: t1 && t2)
    }
}

extension AuditEncoding {
    /// Decodes a canonical encoding (the hashes are not part of it and come back zero).
    public static func decode(_ bytes: [UInt8]) -> AuditEntry? {
        var r = ByteReader(bytes)
        func str() -> String? { r.readLengthPrefixed().flatMap { String(validating: $0, as: UTF8.self) } }
        guard r.readUInt8() == version, let seq = r.readUInt64(), let time = r.readUInt64(), let actorID = str(), let role = str(),
            let action = str(), let workspace = str(), let outcome = str(), let keyID = str(), let fields = r.readLengthPrefixed(), r.isAtEnd
        else { return nil }
        return AuditEntry(
            seq: seq, timeMicros: Int64(bitPattern: time), actor: AuditActor(id: actorID, role: role), action: action, workspace: workspace,
            outcome: outcome, contentKeyID: keyID, fieldsEncoding: fields, prevHash: .zero, entryHash: .zero)
    }
}
