// swift-tools-version:6.0
// libFuzzer targets for Tandem's parsers. Built by scripts/fuzz.sh with
// `-sanitize=fuzzer,address`; not part of the product build.
import PackageDescription

let package = Package(
    name: "TandemFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Tandem", path: "..")],
    targets: [
        .executableTarget(name: "FuzzFrameDecoder", dependencies: [.product(name: "TandemWebSocket", package: "Tandem"), .product(name: "TandemHTTP", package: "Tandem")]),
        .executableTarget(name: "FuzzHTTPParser", dependencies: [.product(name: "TandemWebSocket", package: "Tandem"), .product(name: "TandemHTTP", package: "Tandem")]),
        .executableTarget(name: "FuzzHandshake", dependencies: [.product(name: "TandemWebSocket", package: "Tandem"), .product(name: "TandemHTTP", package: "Tandem")]),
    ]
)
