import Testing
import TandemWebSocket

@Suite struct UTF8ValidatorTests {
    static let valid: [[UInt8]] = [
        [], Array("hello".utf8), Array("κόσμε".utf8), Array("日本語テキスト".utf8), Array("😀👍🏽 family 👨‍👩‍👧".utf8),
        [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], Array(String(repeating: "a", count: 100).utf8),
    ]
    static let invalid: [[UInt8]] = [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF],  // continuation alone, overlong 2-byte
        [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],  // overlong 3-byte
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],  // surrogates
        [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],  // overlong, > U+10FFFF
        [0xFE], [0xFF], Array("abc".utf8) + [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64],
    ]

    @Test func acceptsValidText() {
        for v in Self.valid { #expect(UTF8Validator.isValid(v), "\(v)") }
    }

    @Test func rejectsInvalidText() {
        for v in Self.invalid { #expect(!UTF8Validator.isValid(v), "\(v)") }
        #expect(!UTF8Validator.isValid([0xE2, 0x82]))  // truncated at the end
    }

    @Test func incrementalAtEverySplitAgreesWithWhole() {
        for v in Self.valid + Self.invalid {
            let whole = UTF8Validator.isValid(v)
            for split in 0...v.count {
                var val = UTF8Validator()
                let ok = val.validate(Array(v[..<split])) && val.validate(Array(v[split...])) && val.isComplete
                #expect(ok == whole, "\(v) split at \(split)")
            }
        }
    }

    @Test func failsAtTheFirstBadByte() {
        var v = UTF8Validator()
        let first = v.validate(Array("valid so far ".utf8))
        let second = v.validate([0xC0])
        #expect(first)
        #expect(!second)
    }

    @Test func agreesWithTheStandardLibraryOnRandomBytes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...12, using: &rng)
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(UTF8Validator.isValid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}
