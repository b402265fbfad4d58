import Testing
import TandemConfig

@Suite struct ConfigTests {
    @Test func defaultsRunOnLocalhost() throws {
        let c = try TandemConfiguration.load(file: nil, contents: nil, environment: [:])
        #expect(c.server.host == "127.0.0.1" && c.server.port == 8080 && !c.server.echo && !c.tls.enabled)
    }

    @Test func tomlSubset() throws {
        let text = """
            # comment
            [server]
            host = "0.0.0.0"   # trailing comment
            port = 9_000
            allowedOrigins = [
              "https://a.example", # first
              'https://b.example',
            ]
            [limits]
            closeTimeout = 2.5
            idleTimeout = 60
            [compression]
            enabled = false
            """
        let values = try TOMLSubset.parse(text)
        var c = TandemConfiguration()
        try c.apply(values, source: "test")
        #expect(c.server.host == "0.0.0.0")
        #expect(c.server.port == 9000)
        #expect(c.server.allowedOrigins == ["https://a.example", "https://b.example"])
        #expect(c.limits.closeTimeout == 2.5 && c.limits.idleTimeout == 60)
        #expect(c.compression.enabled == false)
    }

    @Test func jsonConfig() throws {
        let json = #"{"server": {"port": 1234, "echo": true}, "log": {"level": "debug"}}"#
        var c = TandemConfiguration()
        try c.apply(try JSONConfig.parse(Array(json.utf8)), source: "json")
        #expect(c.server.port == 1234 && c.server.echo && c.log.level == "debug")
    }

    @Test func environmentOverridesTheFile() throws {
        let c = try TandemConfiguration.load(
            file: "t.toml", contents: Array("[server]\nport = 1\n".utf8),
            environment: ["TANDEM_SERVER_PORT": "2", "TANDEM_SERVER_MAX_CONNECTIONS": "5", "TANDEM_COMPRESSION_ENABLED": "false", "OTHER": "x"])
        #expect(c.server.port == 2 && c.server.maxConnections == 5 && !c.compression.enabled)
    }

    @Test func errorsNameTheSetting() {
        #expect(throws: ConfigError("t.toml: unknown setting 'server.prot'")) {
            _ = try TandemConfiguration.load(file: "t.toml", contents: Array("[server]\nprot = 1\n".utf8), environment: [:])
        }
        #expect(throws: ConfigError.self) { _ = try TandemConfiguration.load(file: "t.toml", contents: Array("[server]\nport = \"x\"\n".utf8), environment: [:]) }
        #expect(throws: ConfigError.self) { _ = try TandemConfiguration.load(file: nil, contents: nil, environment: ["TANDEM_SERVER_PORT": "abc"]) }
        #expect(throws: ConfigError.self) { _ = try TandemConfiguration.load(file: nil, contents: nil, environment: ["TANDEM_SERVER_PORT": "70000"]) }
        #expect(throws: ConfigError.self) { _ = try TOMLSubset.parse("[server\nport = 1") }
        #expect(throws: ConfigError.self) { _ = try TOMLSubset.parse("a = 1\na = 2") }
        #expect(throws: ConfigError.self) { _ = try TOMLSubset.parse("a = \"open") }
    }

    @Test func renderedTOMLParsesBackToTheSameConfiguration() throws {
        var c = TandemConfiguration()
        c.server.port = 4242
        c.server.allowedOrigins = ["https://x"]
        var back = TandemConfiguration()
        try back.apply(try TOMLSubset.parse(c.renderTOML()), source: "render")
        #expect(back == c)
    }

    @Test func environmentNames() {
        let names = Dictionary(uniqueKeysWithValues: TandemConfiguration.keys.map { ($0.name, $0.environmentName) })
        #expect(names["server.maxConnections"] == "TANDEM_SERVER_MAX_CONNECTIONS")
        #expect(names["limits.maxFrameSize"] == "TANDEM_LIMITS_MAX_FRAME_SIZE")
    }
}

@Suite struct ShippedConfigTests {
    /// config/tandem.toml documents every setting with its built-in default.
    @Test func shippedConfigEqualsTheDefaultsAndNamesEverySetting() throws {
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try #require(readText("/" + root + "/config/tandem.toml"))
        let values = try TOMLSubset.parse(text)
        var c = TandemConfiguration()
        try c.apply(values, source: "config/tandem.toml")
        #expect(c == TandemConfiguration())
        #expect(Set(values.keys) == Set(TandemConfiguration.keys.map(\.name)))
    }
}

#if canImport(Glibc)
import Glibc
#endif
func readText(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}
