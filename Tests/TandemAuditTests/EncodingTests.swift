import Testing
import TandemCrypto
@testable import TandemAudit

@Suite struct EncodingTests {
    static let key = AuditContentKey(bytes: [UInt8](repeating: 0x0B, count: 32))!

    @Test func canonicalEncodingIsByteExact() {
        var fields: [String: AuditFieldValue] = [:]
        fields["z"] = .integer(-2)
        fields["a"] = .text("é")
        fields["m"] = .digest(AuditHash([UInt8](repeating: 0xAB, count: 32))!)
        let f = AuditFields.encode(fields)
        // Sorted by name: a (text), m (digest), z (integer).
        let expectedFields =
            "02" + "00000001" + "61" + "00000002" + "c3a9"
            + "03" + "00000001" + "6d" + String(repeating: "ab", count: 32)
            + "01" + "00000001" + "7a" + "fffffffffffffffe"
        #expect(Hex.encode(f) == expectedFields)

        let e = AuditEntry(
            seq: 258, timeMicros: 1, actor: AuditActor(id: "u", role: "owner"), action: "ws.open", workspace: "", outcome: "success",
            contentKeyID: "k1", fieldsEncoding: f, prevHash: .zero, entryHash: .zero)
        let enc = AuditEncoding.encode(e)
        let expected =
            "01" + "0000000000000102" + "0000000000000001"
            + "00000001" + "75"  // actor id "u"
            + "00000005" + Hex.encode(Array("owner".utf8))
            + "00000007" + Hex.encode(Array("ws.open".utf8))
            + "00000000"  // workspace ""
            + "00000007" + Hex.encode(Array("success".utf8))
            + "00000002" + Hex.encode(Array("k1".utf8))
            + String(format8: f.count) + expectedFields
        #expect(Hex.encode(enc) == expected)
        // entryHash = SHA-256(prevHash || encoding).
        let h = SHA256Context().chain(.zero, enc.withUnsafeBytes { UnsafeRawBufferPointer($0) })
        #expect(h.bytes == Digest.sha256([UInt8](repeating: 0, count: 32) + enc))
        // And it decodes back.
        #expect(AuditEncoding.decode(enc) == e)
        #expect(AuditEncoding.decode(enc + [0]) == nil)
        #expect(AuditEncoding.decode(Array(enc.dropLast())) == nil)
    }

    @Test func fieldsDecodeAndRejectMalformedBlocks() {
        var e = AuditEvent(.llmRequest, actor: AuditActor(id: "u1", role: "editor"), workspace: "w")
        e.add("tokens_in", 1200)
        e.add("model", text: "small-model")
        e.addDigest("prompt", of: Array("secret prompt".utf8), key: Self.key)
        let block = AuditFields.encode(e.fields)
        let decoded = AuditFields.decode(block)
        #expect(decoded?.map(\.name) == ["model", "prompt", "tokens_in"])
        #expect(decoded?[1].value == .digest(Self.key.digest(Array("secret prompt".utf8))))
        #expect(AuditFields.decode(Array(block.dropLast())) == nil)
        #expect(AuditFields.decode([9, 0, 0, 0, 1, 0x61]) == nil)  // unknown tag
        // Out of order names are refused (the encoding is canonical).
        let b = AuditFields.encode(["b": .integer(1)]), a = AuditFields.encode(["a": .integer(1)])
        #expect(AuditFields.decode(b + a) == nil)
        #expect(AuditFields.decode(a + a) == nil)
    }

    @Test func digestsAreKeyedHMACs() {
        let content = Array("print('hunter2')".utf8)
        #expect(Self.key.digest(content).bytes == Digest.hmacSHA256(key: [UInt8](repeating: 0x0B, count: 32), content))
        let other = AuditContentKey(bytes: [UInt8](repeating: 0x0C, count: 32))!
        #expect(other.digest(content) != Self.key.digest(content))
        #expect(other.id != Self.key.id && Self.key.id.count == 16)
        // The description never shows the key.
        #expect(!"\(Self.key)".contains("0b0b"))
    }

    @Test func actionsAreStableDottedNames() {
        #expect(AuditAction.authLoginFailed.rawValue == "auth.login.failed")
        #expect(AuditAction(rawValue: "Kernel.Execute") == nil)
        #expect(AuditAction(rawValue: "") == nil)
        #expect(Set(AuditAction.known.map(\.rawValue)).count == AuditAction.known.count)
        for a in AuditAction.known { #expect(AuditAction(rawValue: a.rawValue) == a) }
    }

    @Test func timeFormatsAndParsesUTC() {
        #expect(AuditTime.format(micros: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(AuditTime.format(micros: 951_782_400_000_001) == "2000-02-29T00:00:00.000001Z")
        #expect(AuditTime.format(micros: -1) == "1969-12-31T23:59:59.999999Z")
        #expect(AuditTime.parse("2000-02-29", now: 0) == 951_782_400_000_000)
        #expect(AuditTime.parse("2000-02-29T00:00:01.5Z", now: 0) == 951_782_401_500_000)
        let twoHoursAgo = AuditTime.parse("2h", now: 10_000_000_000)
        #expect(twoHoursAgo == Int64(2_800_000_000))
        #expect(AuditTime.parse("2000-02-29T00:00:01+01:00", now: 0) == nil)
        #expect(AuditTime.parse("yesterday", now: 0) == nil)
        for t: Int64 in [0, 1_795_529_225_123_456, 4_102_444_800_000_000] {
            #expect(AuditTime.parse(AuditTime.format(micros: t), now: 0) == t)
        }
    }

    @Test func jsonLinesEscapeAndShowDigestsOnly() {
        var fields: [String: AuditFieldValue] = [:]
        fields["bytes"] = .integer(12)
        fields["content"] = .digest(.zero)
        let e = AuditEntry(
            seq: 1, timeMicros: 0, actor: AuditActor(id: "a\"b\n", role: "owner"), action: "file.write", workspace: "w",
            outcome: "success", contentKeyID: "k", fieldsEncoding: AuditFields.encode(fields), prevHash: .zero, entryHash: .zero)
        let line = AuditJSON.line(e)
        #expect(line.contains("\"actor_id\":\"a\\\"b\\n\""))
        #expect(line.contains("\"fields\":{\"bytes\":12,\"content\":{\"hmac_sha256\":\"" + String(repeating: "0", count: 64) + "\"}}"))
        #expect(!line.contains("\n"))
    }
}

extension String {
    /// Eight hex digits of a length (u32 big-endian).
    init(format8 n: Int) {
        let h = String(n, radix: 16)
        self = String(repeating: "0", count: 8 - h.count) + h
    }
}
