// Kernel specs: `config/kernels/NAME/kernel.json` plus the driver program beside it, in the
// spirit of Jupyter's kernelspecs. The directory is bound read-only at /opt/kernel.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public struct KernelSpec: Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var language: String
    public var fileExtension: String
    /// argv inside the container; `/opt/kernel` is the spec directory.
    public var argv: [String]
    public var env: [String: String]
    /// Absolute host path of the spec directory.
    public var directory: String

    /// Where the spec directory appears inside the container.
    public static let mountPoint = "/opt/kernel"

    struct File: Decodable {
        var name: String
        var display_name: String?
        var language: String
        var file_extension: String?
        var argv: [String]
        var env: [String: String]?
    }

    /// Reads every `*/kernel.json` under `root` (an absolute path).
    public static func loadAll(root: String) throws(KernelError) -> [String: KernelSpec] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else {
            throw KernelError(.configuration, "kernel specs directory \(root) cannot be read")
        }
        var out: [String: KernelSpec] = [:]
        for name in names.sorted() {
            let dir = root + "/" + name
            guard let data = fm.contents(atPath: dir + "/kernel.json") else { continue }
            let f: File
            do { f = try JSONDecoder().decode(File.self, from: data) } catch {
                throw KernelError(.configuration, "\(dir)/kernel.json: \(error)")
            }
            guard f.name == name else {
                throw KernelError(.configuration, "\(dir)/kernel.json: name \"\(f.name)\" differs from its directory")
            }
            guard let exe = f.argv.first, exe.hasPrefix("/") else {
                throw KernelError(.configuration, "\(dir)/kernel.json: argv must start with an absolute path")
            }
            out[name] = KernelSpec(
                name: f.name, displayName: f.display_name ?? f.name, language: f.language,
                fileExtension: f.file_extension ?? "", argv: f.argv, env: f.env ?? [:], directory: dir)
        }
        if out.isEmpty { throw KernelError(.configuration, "no kernel specs (NAME/kernel.json) in \(root)") }
        return out
    }

    /// argv for running the driver directly on the host (the unsafe development backend).
    public var hostArgv: [String] {
        argv.map { $0.hasPrefix(Self.mountPoint + "/") ? directory + $0.dropFirst(Self.mountPoint.count) : $0 }
    }
}
