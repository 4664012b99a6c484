import Foundation

enum ModelFiles {
    /// Copies a user-picked file into Application Support/models and returns the copy's URL.
    /// An existing copy of the same name is kept (the user picked the same model again).
    static func copyIntoAppStorage(_ picked: URL) throws -> URL {
        let scoped = picked.startAccessingSecurityScopedResource()
        defer { if scoped { picked.stopAccessingSecurityScopedResource() } }
        let dir = try FileManager.default.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true
        ).appendingPathComponent("models", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let target = dir.appendingPathComponent(picked.lastPathComponent)
        if !FileManager.default.fileExists(atPath: target.path) {
            try FileManager.default.copyItem(at: picked, to: target)
        }
        return target
    }
}
