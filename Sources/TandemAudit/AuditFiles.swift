// File-system helpers shared by the audit command line and its tests.
#if canImport(Glibc)
import Glibc
#endif

public enum AuditFiles {
    /// `rm -r`: removes `path` and everything below it, without following symlinks.
    public static func removeTree(_ path: String) {
        guard let d = opendir(path) else {
            unlink(path)
            return
        }
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            let child = path + "/" + name
            var st = stat()
            if lstat(child, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        closedir(d)
        rmdir(path)
    }
}
