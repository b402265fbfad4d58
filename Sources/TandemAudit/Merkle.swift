// Merkle trees in the style of RFC 6962 (Certificate Transparency) §2.1, with the verification
// algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.
//
// Leaves are entry hashes: leaf hash = SHA-256(0x00 || entryHash); interior node =
// SHA-256(0x01 || left || right). The tree over n leaves splits at k, the largest power of two
// smaller than n (RFC 6962 §2.1).

/// RFC 6962 Merkle tree hashing, proofs and proof verification.
public enum Merkle {
    /// `SHA-256(0x00 || entryHash)`.
    public static func leafHash(_ entryHash: AuditHash) -> AuditHash { SHA256Context().leaf(entryHash) }

    /// `SHA-256(0x01 || left || right)`.
    public static func nodeHash(_ left: AuditHash, _ right: AuditHash) -> AuditHash { SHA256Context().node(left, right) }

    /// The Merkle tree hash of the empty tree: `SHA-256()` (RFC 6962 §2.1).
    public static let emptyRoot: AuditHash = SHA256Context().hash([])

    /// The largest power of two strictly smaller than `n` (n ≥ 2).
    static func splitPoint(_ n: UInt64) -> UInt64 {
        precondition(n >= 2)
        return 1 << (63 - (n - 1).leadingZeroBitCount)
    }

    /// MTH over `leaves` (leaf hashes, not entry hashes).
    public static func root(leafHashes leaves: ArraySlice<AuditHash>) -> AuditHash {
        var acc = MerkleAccumulator()
        for l in leaves { acc.append(leafHash: l) }
        return acc.root()
    }

    /// MTH over `leaves` (leaf hashes).
    public static func root(leafHashes leaves: [AuditHash]) -> AuditHash { root(leafHashes: leaves[...]) }

    // MARK: Proofs over a subtree-hash provider

    /// The inclusion proof `PATH(m, D[n])` (RFC 6962 §2.1.1), given a function that returns the
    /// hash of the subtree over leaves `lo..<hi` (always a range RFC 6962 asks for).
    public static func inclusionProof<E: Error>(
        leafIndex m: UInt64, treeSize n: UInt64, subtree: (UInt64, UInt64) throws(E) -> AuditHash
    ) throws(E) -> [AuditHash] {
        precondition(m < n, "leaf index outside the tree")
        var path: [AuditHash] = []
        // Walk down from the root, collecting the sibling at each level, then reverse (the proof
        // lists the siblings from the leaf up).
        var lo: UInt64 = 0, hi = n, idx = m
        while hi - lo > 1 {
            let k = splitPoint(hi - lo)
            if idx < k {
                path.append(try subtree(lo + k, hi))
                hi = lo + k
            } else {
                path.append(try subtree(lo, lo + k))
                lo += k
                idx -= k
            }
        }
        return path.reversed()
    }

    /// The consistency proof `PROOF(m, D[n])` (RFC 6962 §2.1.2) between the tree of the first
    /// `m` leaves and the tree of `n` leaves (0 < m ≤ n).
    public static func consistencyProof<E: Error>(
        oldSize m: UInt64, newSize n: UInt64, subtree: (UInt64, UInt64) throws(E) -> AuditHash
    ) throws(E) -> [AuditHash] {
        precondition(m > 0 && m <= n, "consistency proof needs 0 < old size <= new size")
        // SUBPROOF(m, D[lo..<hi], b), unrolled from the root down; nodes collected top-down and
        // reversed at the end (the recursion appends on the way back up).
        var proof: [AuditHash] = []
        var lo: UInt64 = 0, hi = n, mm = m, b = true
        while true {
            let size = hi - lo
            if mm == size {
                if !b { proof.append(try subtree(lo, hi)) }
                break
            }
            let k = splitPoint(size)
            if mm <= k {
                proof.append(try subtree(lo + k, hi))
                hi = lo + k
            } else {
                proof.append(try subtree(lo, lo + k))
                lo += k
                mm -= k
                b = false
            }
        }
        return proof.reversed()
    }

    /// An inclusion proof over leaf hashes held in memory.
    public static func inclusionProof(leafIndex m: UInt64, leafHashes: [AuditHash]) -> [AuditHash] {
        inclusionProof(leafIndex: m, treeSize: UInt64(leafHashes.count)) { lo, hi in
            root(leafHashes: leafHashes[Int(lo)..<Int(hi)])
        }
    }

    /// A consistency proof over leaf hashes held in memory.
    public static func consistencyProof(oldSize m: UInt64, leafHashes: [AuditHash]) -> [AuditHash] {
        consistencyProof(oldSize: m, newSize: UInt64(leafHashes.count)) { lo, hi in
            root(leafHashes: leafHashes[Int(lo)..<Int(hi)])
        }
    }

    // MARK: Verification (RFC 9162)

    /// Checks that `leafHash` is leaf `index` of the tree of `treeSize` leaves with `root`
    /// (RFC 9162 §2.1.3.2).
    public static func verifyInclusion(
        leafHash: AuditHash, leafIndex: UInt64, treeSize: UInt64, proof: [AuditHash], root: AuditHash
    ) -> Bool {
        guard leafIndex < treeSize else { return false }
        let h = SHA256Context()
        var fn = leafIndex, sn = treeSize - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = h.node(p, r)
                if fn & 1 == 0 {
                    repeat {
                        fn >>= 1
                        sn >>= 1
                    } while fn & 1 == 0 && fn != 0
                }
            } else {
                r = h.node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Checks that the tree of `oldSize` leaves with `oldRoot` is a prefix of the tree of
    /// `newSize` leaves with `newRoot` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(
        oldSize: UInt64, newSize: UInt64, oldRoot: AuditHash, newRoot: AuditHash, proof: [AuditHash]
    ) -> Bool {
        if oldSize > newSize { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        if proof.isEmpty { return false }
        let h = SHA256Context()
        var path = proof
        // Step 2: when the old size is a power of two, the old root is the first node.
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = h.node(c, fr)
                sr = h.node(c, sr)
                if fn & 1 == 0 {
                    repeat {
                        fn >>= 1
                        sn >>= 1
                    } while fn & 1 == 0 && fn != 0
                }
            } else {
                sr = h.node(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }
}

/// The right edge of a growing Merkle tree: the roots of the perfect subtrees that the first
/// `count` leaves decompose into, largest first (at most 64). Appending a leaf costs one leaf
/// hash plus on average one node hash; the root of the current tree folds these right to left.
public struct MerkleAccumulator: Sendable, Equatable {
    /// The number of leaves.
    public private(set) var count: UInt64 = 0
    /// Perfect-subtree roots, largest (leftmost) first; subtree i covers 2^(bit) leaves for the
    /// set bits of `count` from the highest down.
    public private(set) var frontier: [AuditHash] = []

    public init() {}

    /// Restores an accumulator from a stored frontier. Returns nil when the number of hashes
    /// does not match the number of set bits in `count`.
    public init?(count: UInt64, frontier: [AuditHash]) {
        guard count.nonzeroBitCount == frontier.count else { return nil }
        self.count = count
        self.frontier = frontier
    }

    /// Appends a leaf hash (`SHA-256(0x00 || entryHash)`).
    public mutating func append(leafHash: AuditHash) {
        append(leafHash: leafHash, using: SHA256Context())
    }

    /// Appends a leaf hash using a caller-owned context (the hot path).
    mutating func append(leafHash: AuditHash, using h: SHA256Context) {
        var node = leafHash
        // Each trailing one bit of the old count is a perfect subtree of the same size as the
        // node being carried: merge them, like a binary increment.
        var c = count
        while c & 1 == 1 {
            node = h.node(frontier.removeLast(), node)
            c >>= 1
        }
        frontier.append(node)
        count += 1
    }

    /// The Merkle tree hash of the leaves appended so far.
    public func root() -> AuditHash { root(using: SHA256Context()) }

    func root(using h: SHA256Context) -> AuditHash {
        guard var r = frontier.last else { return Merkle.emptyRoot }
        for s in frontier.dropLast().reversed() { r = h.node(s, r) }
        return r
    }

    /// The sizes of the frontier's subtrees, largest first, with their first leaf index.
    func subtreeRanges() -> [(lo: UInt64, hi: UInt64)] {
        var out: [(UInt64, UInt64)] = []
        var lo: UInt64 = 0
        for bit in stride(from: 63, through: 0, by: -1) where count & (1 << UInt64(bit)) != 0 {
            let size: UInt64 = 1 << UInt64(bit)
            out.append((lo, lo + size))
            lo += size
        }
        return out
    }
}
