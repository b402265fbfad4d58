import Testing
import TandemCrypto
@testable import TandemAudit

/// Straight from RFC 6962 §2.1, recursively, with TandemCrypto's one-shot SHA-256: the
/// reference the optimized code is compared against.
enum Reference {
    static func leaf(_ data: [UInt8]) -> AuditHash { AuditHash(Digest.sha256([0] + data))! }
    static func node(_ l: AuditHash, _ r: AuditHash) -> AuditHash { AuditHash(Digest.sha256([1] + l.bytes + r.bytes))! }
    static func k(_ n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }
    static func mth(_ d: ArraySlice<AuditHash>) -> AuditHash {
        if d.isEmpty { return AuditHash(Digest.sha256([UInt8]()))! }
        if d.count == 1 { return d.first! }
        let k = k(d.count)
        return node(mth(d.prefix(k)), mth(d.dropFirst(k)))
    }
    static func path(_ m: Int, _ d: ArraySlice<AuditHash>) -> [AuditHash] {
        if d.count == 1 { return [] }
        let k = k(d.count)
        if m < k { return path(m, d.prefix(k)) + [mth(d.dropFirst(k))] }
        return path(m - k, d.dropFirst(k)) + [mth(d.prefix(k))]
    }
    static func subproof(_ m: Int, _ d: ArraySlice<AuditHash>, _ b: Bool) -> [AuditHash] {
        if m == d.count { return b ? [] : [mth(d)] }
        let k = k(d.count)
        if m <= k { return subproof(m, d.prefix(k), b) + [mth(d.dropFirst(k))] }
        return subproof(m - k, d.dropFirst(k), false) + [mth(d.prefix(k))]
    }
}

@Suite struct MerkleTests {
    /// Leaf hashes of the RFC 6962 / Certificate Transparency test inputs.
    static let ctLeaves: [AuditHash] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .map { Reference.leaf(Hex.decode($0)!) }

    @Test func rootsMatchCertificateTransparencyVectors() {
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ]
        for n in 1...8 {
            #expect(Merkle.root(leafHashes: Array(Self.ctLeaves.prefix(n))).hex == expected[n - 1], "size \(n)")
        }
        #expect(Merkle.emptyRoot.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func handComputedThreeLeafTree() {
        // Tree of 3: node(node(a, b), c).
        let a = Reference.leaf([1]), b = Reference.leaf([2]), c = Reference.leaf([3])
        let ab = Reference.node(a, b)
        let root = Reference.node(ab, c)
        #expect(Merkle.root(leafHashes: [a, b, c]) == root)
        // PATH(0) = [b, c]; PATH(2) = [ab].
        #expect(Merkle.inclusionProof(leafIndex: 0, leafHashes: [a, b, c]) == [b, c])
        #expect(Merkle.inclusionProof(leafIndex: 2, leafHashes: [a, b, c]) == [ab])
        #expect(Merkle.verifyInclusion(leafHash: c, leafIndex: 2, treeSize: 3, proof: [ab], root: root))
        #expect(!Merkle.verifyInclusion(leafHash: c, leafIndex: 1, treeSize: 3, proof: [ab], root: root))
        // PROOF(2, D[3]) = [c] (old root ab is a complete subtree, so b is true and it is omitted).
        #expect(Merkle.consistencyProof(oldSize: 2, leafHashes: [a, b, c]) == [c])
        #expect(Merkle.verifyConsistency(oldSize: 2, newSize: 3, oldRoot: ab, newRoot: root, proof: [c]))
        // PROOF(1, D[3]) = [b, c].
        #expect(Merkle.consistencyProof(oldSize: 1, leafHashes: [a, b, c]) == [b, c])
        #expect(Merkle.verifyConsistency(oldSize: 1, newSize: 3, oldRoot: a, newRoot: root, proof: [b, c]))
    }

    @Test func handComputedSevenLeafProofs() {
        // RFC 6962 §2.1.3 example tree of 7 leaves d0...d6.
        let d = (0..<7).map { Reference.leaf([UInt8($0)]) }
        let a = Reference.node(d[0], d[1]), b = Reference.node(d[2], d[3]), c = Reference.node(d[4], d[5])
        let g = Reference.node(a, b), h = Reference.node(c, d[6])
        let root = Reference.node(g, h)
        #expect(Merkle.root(leafHashes: d) == root)
        // "The audit path for d0 is [b, h, l]" in the RFC's letters: [d1, b, h].
        #expect(Merkle.inclusionProof(leafIndex: 0, leafHashes: d) == [d[1], b, h])
        // d3: [c, g, l] -> [d2, a, h]; d4: [f, j, k] -> [d5, d6, g]; d6: [i, k] -> [c, g].
        #expect(Merkle.inclusionProof(leafIndex: 3, leafHashes: d) == [d[2], a, h])
        #expect(Merkle.inclusionProof(leafIndex: 4, leafHashes: d) == [d[5], d[6], g])
        #expect(Merkle.inclusionProof(leafIndex: 6, leafHashes: d) == [c, g])
        // §2.1.3 consistency: PROOF(3, D[7]) = [c, d, g, l] -> [d2, d3, a, h];
        // PROOF(4, D[7]) = [l] -> [h]; PROOF(6, D[7]) = [i, j, k] -> [c, d6, g].
        #expect(Merkle.consistencyProof(oldSize: 3, leafHashes: d) == [d[2], d[3], a, h])
        #expect(Merkle.consistencyProof(oldSize: 4, leafHashes: d) == [h])
        #expect(Merkle.consistencyProof(oldSize: 6, leafHashes: d) == [c, d[6], g])
        for m in 1...7 {
            let p = Merkle.consistencyProof(oldSize: UInt64(m), leafHashes: d)
            #expect(Merkle.verifyConsistency(oldSize: UInt64(m), newSize: 7, oldRoot: Merkle.root(leafHashes: Array(d.prefix(m))), newRoot: root, proof: p))
        }
    }

    @Test func everyProofUpToThirtyThreeLeavesMatchesTheReferenceAndVerifies() {
        let leaves = (0..<33).map { Reference.leaf(Array("leaf \($0)".utf8)) }
        for n in 1...33 {
            let d = Array(leaves.prefix(n))
            let root = Merkle.root(leafHashes: d)
            #expect(root == Reference.mth(d[...]))
            for m in 0..<n {
                let p = Merkle.inclusionProof(leafIndex: UInt64(m), leafHashes: d)
                #expect(p == Reference.path(m, d[...]))
                #expect(Merkle.verifyInclusion(leafHash: d[m], leafIndex: UInt64(m), treeSize: UInt64(n), proof: p, root: root))
                // Wrong leaf, wrong index, wrong size, truncated path: all rejected.
                #expect(!Merkle.verifyInclusion(leafHash: d[(m + 1) % n], leafIndex: UInt64(m), treeSize: UInt64(n), proof: p, root: root) || n == 1)
                if n > 1 {
                    #expect(!Merkle.verifyInclusion(leafHash: d[m], leafIndex: UInt64((m + 1) % n), treeSize: UInt64(n), proof: p, root: root))
                    #expect(!Merkle.verifyInclusion(leafHash: d[m], leafIndex: UInt64(m), treeSize: UInt64(n), proof: Array(p.dropLast()), root: root))
                }
            }
            for m in 1...n {
                let p = Merkle.consistencyProof(oldSize: UInt64(m), leafHashes: d)
                #expect(p == Reference.subproof(m, d[...], true))
                let oldRoot = Merkle.root(leafHashes: Array(d.prefix(m)))
                #expect(Merkle.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: oldRoot, newRoot: root, proof: p))
                if m < n {
                    // A different old tree is not consistent.
                    var other = Array(d.prefix(m))
                    other[m - 1] = Reference.leaf([0xFF])
                    #expect(!Merkle.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: Merkle.root(leafHashes: other), newRoot: root, proof: p))
                    #expect(!Merkle.verifyConsistency(oldSize: UInt64(m), newSize: UInt64(n), oldRoot: oldRoot, newRoot: root, proof: Array(p.dropLast())))
                }
            }
        }
    }

    @Test func randomTreesAgreeWithTheReference() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let n = Int.random(in: 65...700, using: &rng)
            let d = (0..<n).map { _ in Reference.leaf((0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
            let root = Merkle.root(leafHashes: d)
            #expect(root == Reference.mth(d[...]))
            let m = Int.random(in: 0..<n, using: &rng)
            let p = Merkle.inclusionProof(leafIndex: UInt64(m), leafHashes: d)
            #expect(Merkle.verifyInclusion(leafHash: d[m], leafIndex: UInt64(m), treeSize: UInt64(n), proof: p, root: root))
            let old = Int.random(in: 1...n, using: &rng)
            let c = Merkle.consistencyProof(oldSize: UInt64(old), leafHashes: d)
            #expect(c == Reference.subproof(old, d[...], true))
            #expect(Merkle.verifyConsistency(oldSize: UInt64(old), newSize: UInt64(n), oldRoot: Merkle.root(leafHashes: Array(d.prefix(old))), newRoot: root, proof: c))
        }
    }

    @Test func accumulatorFrontierRestoresAndMatchesRoots() {
        var acc = MerkleAccumulator()
        var leaves: [AuditHash] = []
        for i in 0..<300 {
            let l = Reference.leaf([UInt8(i & 0xFF), UInt8(i >> 8)])
            leaves.append(l)
            acc.append(leafHash: l)
            #expect(acc.frontier.count == acc.count.nonzeroBitCount)
            if i % 37 == 0 { #expect(acc.root() == Reference.mth(leaves[...])) }
        }
        let restored = MerkleAccumulator(count: acc.count, frontier: acc.frontier)
        #expect(restored == acc)
        #expect(MerkleAccumulator(count: 5, frontier: []) == nil)
        // The frontier's subtrees are the aligned blocks of the size's binary decomposition.
        let ranges = acc.subtreeRanges()
        #expect(ranges.map(\.lo) == [0, 256, 288, 296])  // 300 = 256 + 32 + 8 + 4
        #expect(ranges.map(\.hi) == [256, 288, 296, 300])
        for (i, r) in ranges.enumerated() { #expect(acc.frontier[i] == Reference.mth(leaves[Int(r.lo)..<Int(r.hi)])) }
    }
}
