// swift-tools-version:6.0
// Tandem: a WebSocket-first collaborative workspace server.
// The product links no SwiftNIO; peers for benchmarks live in Benchmarks/ (its own package).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// For the event loop and the connection classes on the hot path: release builds drop the
/// dynamic exclusivity checks (about 8% of server CPU on pipelined echo, measured with perf);
/// debug builds and every test run keep them.
let hotPath: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "tandem-autobahn-client", targets: ["tandem-autobahn-client"]),
        .executable(name: "tandem-loadgen", targets: ["tandem-loadgen"]),
        .library(name: "TandemWebSocket", targets: ["TandemWebSocket"]),
        .library(name: "TandemHTTP", targets: ["TandemHTTP"]),
        .library(name: "TandemServer", targets: ["TandemServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries and the small system shim.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CTandemSystem"),

        // Pure value-type libraries: no sockets, no clocks.
        .target(name: "TandemCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "TandemWebSocket", dependencies: ["TandemCrypto", "TandemHTTP", "CZlib"], swiftSettings: hotPath),
        .target(name: "TandemHTTP", swiftSettings: strict),
        .target(name: "TandemConfig", swiftSettings: strict),
        // The audit log: keyed digests only, hash chain, signed Merkle checkpoints, on SQLite.
        .target(name: "TandemAudit", dependencies: ["CSQLite", "COpenSSL", "TandemCrypto"], swiftSettings: strict),

        // The event loop and transports (TCP, TLS).
        .target(
            name: "TandemLoop",
            dependencies: ["CTandemSystem", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath),

        // Workspace kernels: persistent interpreters in OCI containers, driven from the loop.
        .target(
            name: "TandemKernel",
            dependencies: [
                "TandemLoop", "TandemConfig", "TandemCrypto", "CTandemSystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // HTTP/1.1 + WebSocket server and client on the loop.
        .target(
            name: "TandemServer",
            dependencies: [
                "TandemLoop", "TandemHTTP", "TandemWebSocket", "TandemConfig", "TandemCrypto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPath),

        .executableTarget(
            name: "tandem",
            dependencies: [
                "TandemServer", "TandemConfig", "TandemAudit", "TandemKernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "tandem-autobahn-client",
            dependencies: ["TandemServer", "TandemWebSocket"],
            swiftSettings: strict),

        .executableTarget(
            name: "tandem-loadgen",
            dependencies: ["TandemServer", "TandemLoop", "TandemWebSocket", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        .testTarget(name: "TandemCryptoTests", dependencies: ["TandemCrypto"]),
        .testTarget(name: "TandemAuditTests", dependencies: ["TandemAudit", "TandemCrypto"]),
        .testTarget(name: "TandemWebSocketTests", dependencies: ["TandemWebSocket", "TandemHTTP"]),
        .testTarget(name: "TandemHTTPTests", dependencies: ["TandemHTTP"]),
        .testTarget(name: "TandemConfigTests", dependencies: ["TandemConfig"]),
        .testTarget(name: "TandemKernelTests", dependencies: ["TandemKernel", "TandemLoop", "TandemConfig"]),
        .testTarget(
            name: "TandemIntegrationTests",
            dependencies: ["TandemServer", "TandemLoop", "TandemWebSocket", "TandemConfig"]),
    ]
)
