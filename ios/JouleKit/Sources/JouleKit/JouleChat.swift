import Foundation

@_exported import Joule

/// A thin holder an app's view model can keep: one engine, one chat session, and the few
/// strings a chat screen shows. Generation, history, energy and the bench all run in Rust.
public final class JouleChat: @unchecked Sendable {
    public let engine: JouleEngine
    public let session: ChatSession
    public let modelPath: String

    /// Loads the model (memory-mapped) and opens a session. `probe` feeds platform battery
    /// readings to the core's energy meter (see `makeBatteryProbe`).
    public init(modelPath: String, probe: EnergyProbe? = nil, threads: UInt32? = nil) throws {
        self.modelPath = modelPath
        // "auto": RAPL or a readable sysfs battery first, then the app's probe, else an
        // estimate; the report always says which.
        engine = try JouleEngine.load(
            path: modelPath, options: EngineOptions(threads: threads, energy: EnergyOptions(source: "auto")),
            probe: probe)
        session = try engine.newSession()
    }

    /// "SmolLM2 135M · llama · 135 M params · Q4_1 · 2 threads · avx2"
    public var modelDescription: String {
        guard let info = try? engine.info() else { return modelPath }
        return Self.describe(info)
    }

    public static func describe(_ info: EngineInfo) -> String {
        let quant = info.quantTypes.max { $0.value < $1.value }?.key ?? "?"
        return [
            info.name, info.architecture, "\(info.parameters / 1_000_000) M params", quant,
            "\(info.threads) threads", info.kernel,
        ].joined(separator: " · ")
    }

    /// Blocking: streams pieces to `onText` (from a Rust thread) and returns the turn's figures.
    @discardableResult
    public func send(
        _ text: String, options: SendOptions = SendOptions(),
        onText: @escaping (String) -> Void
    ) throws -> ChatStats {
        ChatStats(report: try session.send(text: text, options: options, listener: ClosureListener(onText)))
    }

    /// Safe from any thread; the running `send` returns with stop reason `cancelled`.
    public func cancel() { session.cancel() }

    public func reset() throws { try session.reset() }

    public func saveHistory() throws -> String { try session.historyJson() }

    public func restoreHistory(_ json: String) throws { try session.restore(json: json) }

    /// Runs the core's battery bench on this engine and returns its JSON.
    public func runBatteryBench(seconds: Double, progress: @escaping (String) -> Void) throws -> String {
        let options = EnergyBenchOptions(durationS: seconds)
        return try engine.runEnergyBench(options: options, listener: ClosureBenchListener(progress)).json
    }

    /// A user-facing message for an error thrown by the bindings.
    public static func describe(_ error: Error) -> String {
        if let joule = error as? JouleError { return "\(joule)" }
        return error.localizedDescription
    }
}

/// What the chat screen shows after a turn. Every figure comes from the Rust report; only the
/// wording is made here.
public struct ChatStats: Equatable, Sendable {
    public let tokensPerSecond: Double
    public let generatedTokens: UInt64
    /// nil when energy metering was off or gave no figure.
    public let joulesPerToken: Double?
    /// "measured", "estimated" or "platform", with the source in words.
    public let energyMethod: String

    public init(tokensPerSecond: Double, generatedTokens: UInt64, joulesPerToken: Double?, energyMethod: String) {
        self.tokensPerSecond = tokensPerSecond
        self.generatedTokens = generatedTokens
        self.joulesPerToken = joulesPerToken
        self.energyMethod = energyMethod
    }

    public init(report: GenerationReport) {
        self.init(
            tokensPerSecond: report.decodeTokensPerS, generatedTokens: report.generatedTokens,
            joulesPerToken: report.energy?.joulesPerGeneratedToken,
            energyMethod: report.energy.map { "\($0.sourceKind) (\($0.method)): \($0.source)" } ?? "energy off")
    }

    /// "23.4 t/s · 0.120 J/token · platform: ios-uidevice-battery-level (coarse)"
    public var line: String {
        let speed = String(format: "%.1f t/s", tokensPerSecond)
        let energy = joulesPerToken.map { String(format: "%.3f J/token", $0) } ?? "J/token n/a"
        return "\(speed) · \(energy) · \(energyMethod)"
    }
}

final class ClosureListener: TokenListener, @unchecked Sendable {
    private let body: (String) -> Void
    init(_ body: @escaping (String) -> Void) { self.body = body }
    func onText(text: String) { body(text) }
}

final class ClosureBenchListener: BenchListener, @unchecked Sendable {
    private let body: (String) -> Void
    init(_ body: @escaping (String) -> Void) { self.body = body }
    func onProgress(progress: BenchProgress) -> Bool {
        body(String(format: "%.0f %% · ", progress.fraction * 100) + "\(progress.phase), \(progress.generatedTokens) tokens")
        return true
    }
}
