import Testing
import TandemCrypto
@testable import TandemAudit
#if canImport(Glibc)
import Glibc
#endif

@Suite struct KeyTests {
    /// RFC 8032 §7.1, TEST 1 and TEST 2.
    @Test func ed25519MatchesRFC8032() {
        let key = AuditSigningKey(seed: Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!)!
        #expect(Hex.encode(key.publicKey.bytes) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let sig = key.sign([])
        #expect(Hex.encode(sig) == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        #expect(key.publicKey.verify(signature: sig, message: []))
        #expect(!key.publicKey.verify(signature: sig, message: [0]))

        let key2 = AuditSigningKey(seed: Hex.decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")!)!
        #expect(Hex.encode(key2.publicKey.bytes) == "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        #expect(Hex.encode(key2.sign([0x72])) == "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
        // Key id: first 8 bytes of SHA-256 of the public key.
        #expect(key.id == Hex.encode(Digest.sha256(key.publicKey.bytes).prefix(8)))
    }

    @Test func keysAreGeneratedOnceWithMode0600() throws {
        try withTempDirectory { dir in
            let c = AuditKeyConfiguration.standard(directory: dir + "/audit")
            let k1 = try AuditKeyring.load(c, create: true)
            for path in [c.contentKeyPath, c.signingKeyPath] {
                var st = stat()
                #expect(stat(path, &st) == 0)
                #expect(st.st_mode & 0o777 == 0o600, "\(path)")
            }
            var st = stat()
            #expect(stat(dir + "/audit", &st) == 0 && st.st_mode & 0o777 == 0o700)
            let k2 = try AuditKeyring.load(c, create: true)
            #expect(k1.contentKey == k2.contentKey)
            #expect(k1.signingKey?.id == k2.signingKey?.id)
            #expect(k2.trustedKeys.count == 1)
            // The public-key file lists the signing key.
            #expect(try readPublicKeys(c.trustedKeysPath) == [k1.signingKey!.publicKey])
        }
    }

    @Test func keyFilesReadableByOthersAreRefused() throws {
        try withTempDirectory { dir in
            let c = AuditKeyConfiguration.standard(directory: dir)
            _ = try AuditKeyring.load(c, create: true)
            chmod(c.contentKeyPath, 0o644)
            do {
                _ = try AuditKeyring.load(c, create: false)
                Issue.record("a world-readable key was accepted")
            } catch let error as AuditError {
                #expect(error.code == .keyPermissions)
            }
        }
    }

    @Test func contentKeyFromEnvironment() throws {
        try withTempDirectory { dir in
            let name = "TANDEM_AUDIT_TEST_KEY_\(getpid())"
            setenv(name, String(repeating: "11", count: 32), 1)
            defer { unsetenv(name) }
            let c = AuditKeyConfiguration.standard(directory: dir, contentKeyEnvironmentVariable: name)
            let k = try AuditKeyring.load(c, create: true)
            #expect(k.contentKey == AuditContentKey(bytes: [UInt8](repeating: 0x11, count: 32)))
            #expect(!fileExists(c.contentKeyPath))
            setenv(name, "abc", 1)
            #expect(throws: AuditError.self) { try AuditKeyring.load(c, create: true) }
        }
    }

    @Test func rotationKeepsOldKeysUsable() throws {
        try withTempDirectory { dir in
            let c = AuditKeyConfiguration.standard(directory: dir)
            let before = try AuditKeyring.load(c, create: true)
            let newContent = try AuditKeyring.rotateContentKey(c)
            let newSigning = try AuditKeyring.rotateSigningKey(c)
            let after = try AuditKeyring.load(c, create: false)
            #expect(after.contentKey == newContent)
            #expect(after.retiredContentKeys == [before.contentKey])
            #expect(after.signingKey?.id == newSigning.id)
            #expect(after.trustedKeys[before.signingKey!.id] != nil)
            #expect(after.trustedKeys[newSigning.id] != nil)
        }
    }
}

@Suite struct StreamingDigestTests {
    @Test func streamingDigestEqualsOneShot() {
        let key = AuditContentKey.generate()
        let pieces: [[UInt8]] = [Array("print(".utf8), [], Array("'hello'".utf8), Array(repeating: 0x41, count: 5000), Array(")\n".utf8)]
        let d = key.streamingDigest()
        for p in pieces { d.update(p) }
        #expect(d.count == pieces.map(\.count).reduce(0, +))
        #expect(d.finish() == key.digest(pieces.flatMap { $0 }))
        let empty = key.streamingDigest()
        #expect(empty.finish() == key.digest([UInt8]()))
        #expect(AuditContentKey.generate().digest([1, 2, 3]) != key.digest([1, 2, 3]))
    }
}
