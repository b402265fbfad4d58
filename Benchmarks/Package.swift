// swift-tools-version:6.0
// Tandem's benchmark peers: a package of its own so the product's Package.swift and CI never
// build SwiftNIO. `nio-echo` is the SwiftNIO reference server that scripts/bench.sh measures
// Tandem against (see Benchmarks/README.md).
import PackageDescription

let package = Package(
    name: "TandemBenchmarks",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nio-echo", targets: ["nio-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
    ]
)
