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
        // The thin wrapper over the system SQLite: connections, statements, WAL, migrations.
        .target(name: "TandemSQLite", dependencies: ["CSQLite"], swiftSettings: strict),
        // The audit log: keyed digests only, hash chain, signed Merkle checkpoints, on SQLite.
        .target(name: "TandemAudit", dependencies: ["TandemSQLite", "COpenSSL", "TandemCrypto"], swiftSettings: strict),
        // Users, tokens, sessions, workspaces, members, usage: one SQLite file behind a Mutex.
        .target(name: "TandemStore", dependencies: ["TandemSQLite", "TandemCrypto"], swiftSettings: strict),

        // The event loop and transports (TCP, TLS).
        .target(
            name: "TandemLoop",
            dependencies: ["CTandemSystem", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath),

        // The tandem.v1 protocol: message catalogue, strict parsing, roles and permissions. Pure.
        .target(name: "TandemProtocol", dependencies: ["TandemCrypto"], swiftSettings: strict),

        // Workspace kernels: persistent interpreters in OCI containers, driven from the loop.
        .target(
            name: "TandemKernel",
            dependencies: [
                "TandemLoop", "TandemConfig", "TandemCrypto", "CTandemSystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The workspace server: tandem.v1 sessions, REST, auth and roles over the store, files and kernels.
        .target(
            name: "TandemWorkspace",
            dependencies: [
                "TandemServer", "TandemKernel", "TandemStore", "TandemFiles", "TandemProtocol", "TandemLoop",
                "TandemConfig", "TandemCrypto", "TandemHTTP", "TandemWebSocket", "TandemAudit",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // A tandem.v1 client (tests, benchmarks, Swift scripts).
        .target(
            name: "TandemClient",
            dependencies: ["TandemServer", "TandemLoop", "TandemCrypto", "TandemHTTP", "TandemWebSocket"],
            swiftSettings: strict),

        // Workspace files: openat2-scoped access, atomic writes, inotify change watching.
        .target(name: "TandemFiles", dependencies: ["CTandemSystem", "TandemLoop", "TandemCrypto"], swiftSettings: strict),

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
                "TandemServer", "TandemConfig", "TandemAudit", "TandemKernel", "TandemWorkspace", "TandemStore", "TandemClient",
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
        .testTarget(name: "TandemAuditTests", dependencies: ["TandemAudit", "TandemSQLite", "TandemCrypto"]),
        .testTarget(name: "TandemStoreTests", dependencies: ["TandemStore", "TandemSQLite", "TandemCrypto"]),
        .testTarget(name: "TandemWebSocketTests", dependencies: ["TandemWebSocket", "TandemHTTP"]),
        .testTarget(name: "TandemHTTPTests", dependencies: ["TandemHTTP"]),
        .testTarget(name: "TandemConfigTests", dependencies: ["TandemConfig"]),
        .testTarget(
            name: "TandemFilesTests",
            dependencies: ["TandemFiles", "TandemLoop", "TandemCrypto", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "TandemKernelTests", dependencies: ["TandemKernel", "TandemLoop", "TandemConfig"]),
        .testTarget(name: "TandemProtocolTests", dependencies: ["TandemProtocol", "TandemCrypto"]),
        .testTarget(
            name: "TandemWorkspaceTests",
            dependencies: ["TandemWorkspace", "TandemClient", "TandemServer", "TandemStore", "TandemKernel", "TandemLoop", "TandemConfig", "TandemCrypto", "TandemAudit"]),
        .testTarget(
            name: "TandemIntegrationTests",
            dependencies: ["TandemServer", "TandemLoop", "TandemWebSocket", "TandemConfig"]),
    ]
)
