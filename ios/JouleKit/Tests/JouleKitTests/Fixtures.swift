import Foundation
import XCTest

@testable import Joule
@testable import JouleKit

/// Shared set-up of the binding tests: the real default model (scripts/test-swift passes its
/// path in JOULE_MODEL and the CLI in JOULE_CLI), loaded once per process.
enum Fixtures {
    static let prompt = "Name three primary colours."
    static let maxTokens: UInt32 = 24
    static let context: UInt32 = 512

    static func modelPath() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["JOULE_MODEL"],
            FileManager.default.fileExists(atPath: path)
        else {
            throw Missing(
                what: "the default model",
                fix: "run 'joule fetch smollm2-135m' and pass its path in JOULE_MODEL (scripts/test-swift does)")
        }
        return path
    }

    struct Missing: Error, CustomStringConvertible {
        let what: String
        let fix: String
        var description: String { "\(what) is missing: \(fix)" }
    }

    private static let lock = NSLock()
    private static var shared: JouleEngine?

    /// One engine for the whole test process (loading maps the file; sessions are cheap).
    static func engine() throws -> JouleEngine {
        lock.lock()
        defer { lock.unlock() }
        if let shared { return shared }
        let engine = try JouleEngine.load(path: try modelPath(), options: engineOptions())
        shared = engine
        return engine
    }

    /// Greedy with seed 0, 2 threads, 512 tokens of context, no energy metering
    /// unless a source is named: the settings of `joule run -t 2 -c 512 --temp 0 --energy none`.
    static func engineOptions(energySource: String = "none", baselineS: Double = 0) -> EngineOptions {
        EngineOptions(
            context: context, threads: 2, sampling: SamplingOptions(seed: 0),
            energy: EnergyOptions(source: energySource, baselineS: baselineS, sampleIntervalMs: 20))
    }

    static func options(maxTokens: UInt32 = maxTokens) -> SendOptions {
        SendOptions(maxTokens: maxTokens)
    }

    /// `joule run --json` on the same model, prompt and settings: the streamed text is every
    /// line of stdout before the final JSON report.
    static func cliText(prompt: String) throws -> String {
        guard let cli = ProcessInfo.processInfo.environment["JOULE_CLI"] else {
            throw Missing(what: "JOULE_CLI", fix: "build joule-cli and pass the binary's path")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cli)
        process.arguments = [
            "run", "--json", "-m", try modelPath(), "-t", "2", "-c", "512", "--seed", "0", "--temp", "0",
            "-n", String(maxTokens), "--energy", "none", prompt,
        ]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let stdout = String(data: data, encoding: .utf8) else {
            throw Missing(what: "a successful joule run", fix: "exit status \(process.terminationStatus)")
        }
        var lines = stdout.split(separator: "\n", omittingEmptySubsequences: false)
        while lines.last == "" { lines.removeLast() }
        guard let report = lines.popLast(), report.hasPrefix("{") else {
            throw Missing(what: "the JSON report line", fix: "joule run --json printed: \(stdout)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Collects streamed pieces; called from Rust threads, so it locks.
final class Collector: TokenListener, @unchecked Sendable {
    private let lock = NSLock()
    private var pieces: [String] = []
    private var threads = Set<String>()
    var onPiece: (() -> Void)?

    func onText(text: String) {
        lock.lock()
        pieces.append(text)
        threads.insert(Thread.isMainThread ? "main" : "\(pthread_self())")
        let hook = onPiece
        lock.unlock()
        hook?()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return pieces.joined()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return pieces.count
    }

    var callingThreads: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return threads
    }
}

/// A probe written in Swift that always reports 3.0 W while discharging.
final class ConstantProbe: EnergyProbe, @unchecked Sendable {
    static let probeName = "swift-constant-3w"
    func name() -> String { Self.probeName }
    func read() throws -> ProbeSample {
        ProbeSample(powerW: 3.0, status: .discharging, thermal: .nominal)
    }
}
