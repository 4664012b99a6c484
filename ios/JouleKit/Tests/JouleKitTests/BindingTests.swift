import Foundation
import XCTest

@testable import Joule
@testable import JouleKit

/// The host cases, in Swift, against the real default model.
final class BindingTests: XCTestCase {
    func testStreamedTextEqualsCliRun() throws {
        let session = try Fixtures.engine().newSession()
        let collector = Collector()
        let report = try session.send(text: Fixtures.prompt, options: Fixtures.options(), listener: collector)
        XCTAssertGreaterThan(report.generatedTokens, 0)
        XCTAssertEqual(collector.text, try Fixtures.cliText(prompt: Fixtures.prompt))
        XCTAssertEqual(report.text, collector.text)
        XCTAssertFalse(collector.text.isEmpty)
    }

    func testCancelFromAnotherThreadStopsWithinOneToken() throws {
        let story = "Write a long story about a lighthouse."
        let session = try Fixtures.engine().newSession()
        let collector = Collector()
        let seen = Locked<String?>(nil)
        // At the first streamed piece a second thread cancels while generation waits in the
        // callback: the text seen then is what had been generated when cancel() was called.
        collector.onPiece = {
            guard seen.get() == nil else { return }
            seen.set(collector.text)
            let done = DispatchSemaphore(value: 0)
            Thread {
                session.cancel()
                done.signal()
            }.start()
            done.wait()
        }
        let report = try session.send(
            text: story, options: Fixtures.options(maxTokens: 400), listener: collector)
        let atCancel = try XCTUnwrap(seen.get(), "no piece was streamed")
        XCTAssertEqual(report.stopReason, .cancelled)
        let g = report.generatedTokens
        XCTAssertGreaterThan(g, 0)
        XCTAssertLessThan(g, 400)
        // The same turn uncancelled, one token shorter, was already seen: at most one token
        // came after cancel().
        if g > 1 {
            let before = try Fixtures.engine().newSession().send(
                text: story, options: Fixtures.options(maxTokens: UInt32(g - 1)), listener: Collector())
            XCTAssertTrue(atCancel.hasPrefix(before.text), "seen '\(atCancel)', uncancelled '\(before.text)'")
        }
        XCTAssertTrue(report.text.hasPrefix(atCancel))
        XCTAssertEqual(report.text, collector.text)
        // The session stays usable.
        let again = try session.send(text: "Hi", options: Fixtures.options(maxTokens: 4), listener: Collector())
        XCTAssertGreaterThan(again.generatedTokens, 0)
        XCTAssertNotEqual(again.stopReason, .cancelled)
    }

    func testErrorsArriveTypedAndSessionStaysUsable() throws {
        XCTAssertThrowsError(
            try JouleEngine.load(path: "/nonexistent/model.gguf", options: Fixtures.engineOptions())
        ) { error in
            guard case JouleError.ModelNotFound = error else { return XCTFail("got \(error)") }
        }
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("joule-corrupt-\(getpid()).gguf")
        try Data("GGUF this is not a model".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        XCTAssertThrowsError(try JouleEngine.load(path: bad.path, options: Fixtures.engineOptions())) {
            error in
            guard case JouleError.BadModelFile = error else { return XCTFail("got \(error)") }
        }

        let session = try Fixtures.engine().newSession()
        let long = String(repeating: "lighthouse keeper ", count: 600)  // > 512 tokens of context
        XCTAssertThrowsError(try session.send(text: long, options: Fixtures.options(), listener: Collector())) {
            error in
            guard case JouleError.ContextOverflow = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try session.setSampling(sampling: SamplingOptions(temperature: -1)))
        { error in
            guard case JouleError.InvalidArgument = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try session.restore(json: "{ not json")) { error in
            guard case JouleError.InvalidArgument = error else { return XCTFail("got \(error)") }
        }
        let collector = Collector()
        let report = try session.send(text: Fixtures.prompt, options: Fixtures.options(), listener: collector)
        XCTAssertGreaterThan(report.generatedTokens, 0)
        XCTAssertEqual(collector.text, try Fixtures.cliText(prompt: Fixtures.prompt))
    }

    func testListenerIsCalledFromRustThreads() throws {
        let session = try Fixtures.engine().newSession()
        let collector = Collector()
        let outcome = Locked<Result<GenerationReport, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            outcome.set(Result { try session.send(text: Fixtures.prompt, options: Fixtures.options(), listener: collector) })
            done.signal()
        }.start()
        done.wait()
        let report = try XCTUnwrap(outcome.get()).get()
        XCTAssertGreaterThan(collector.count, 0)
        XCTAssertFalse(collector.callingThreads.contains("main"))
        XCTAssertEqual(collector.text, try Fixtures.cliText(prompt: Fixtures.prompt))
        XCTAssertEqual(report.text, collector.text)
    }

    func testTwoSessionsOnOneEngineFromTwoThreads() throws {
        let engine = try Fixtures.engine()
        let expected = try Fixtures.cliText(prompt: Fixtures.prompt)
        let results = Locked<[Int: Result<String, Error>]>([:])
        let group = DispatchGroup()
        for i in 0..<2 {
            group.enter()
            Thread {
                defer { group.leave() }
                let result = Result { () throws -> String in
                    let collector = Collector()
                    _ = try engine.newSession().send(
                        text: Fixtures.prompt, options: Fixtures.options(), listener: collector)
                    return collector.text
                }
                results.update { $0[i] = result }
            }.start()
        }
        group.wait()
        XCTAssertEqual(try XCTUnwrap(results.get()[0]).get(), expected)
        XCTAssertEqual(try XCTUnwrap(results.get()[1]).get(), expected)
    }

    func testHistoryRestoreContinuesTheConversation() throws {
        let engine = try Fixtures.engine()
        let second = "And which one is the warmest?"
        let straight = try engine.newSession()
        _ = try straight.send(text: Fixtures.prompt, options: Fixtures.options(), listener: Collector())
        let saved = try straight.historyJson()
        let uninterrupted = Collector()
        _ = try straight.send(text: second, options: Fixtures.options(), listener: uninterrupted)

        let restored = try engine.newSession()
        try restored.restore(json: saved)
        let resumed = Collector()
        _ = try restored.send(text: second, options: Fixtures.options(), listener: resumed)
        XCTAssertFalse(uninterrupted.text.isEmpty)
        XCTAssertEqual(resumed.text, uninterrupted.text)
    }

    func testSwiftProbeMakesThePlatformMethod() throws {
        let engine = try JouleEngine.load(
            path: try Fixtures.modelPath(), options: Fixtures.engineOptions(energySource: "platform"),
            probe: ConstantProbe())
        let report = try engine.newSession().send(
            text: Fixtures.prompt, options: Fixtures.options(maxTokens: 48), listener: Collector())
        let energy = try XCTUnwrap(report.energy, "a probe was given: the report must carry energy")
        XCTAssertEqual(energy.sourceKind, "platform")
        XCTAssertEqual(energy.method, .measured)
        XCTAssertTrue(energy.source.contains(ConstantProbe.probeName), energy.source)
        // Whole-turn average: joules over seconds of both windows.
        let seconds = energy.prefill.durationS + energy.decode.durationS
        let watts = (energy.prefillJoules + energy.decodeJoules) / seconds
        XCTAssertEqual(watts, 3.0, accuracy: 0.06, "prefill \(energy.prefillAvgWatts) W, decode \(energy.decodeAvgWatts) W")
        XCTAssertEqual(energy.decodeAvgWatts, 3.0, accuracy: 0.06)
    }

    func testEnergyBenchSubtractsTheBaseline() throws {
        let engine = try JouleEngine.load(
            path: try Fixtures.modelPath(), options: Fixtures.engineOptions(energySource: "platform"),
            probe: ConstantProbe())
        let progress = ProgressCounter()
        let result = try engine.runEnergyBench(
            options: EnergyBenchOptions(baselineS: 0.5, durationS: 2.0, tokensPerPrompt: 16), listener: progress)
        XCTAssertTrue(result.baselineSubtracted)
        XCTAssertEqual(result.baselineWatts, 3.0, accuracy: 0.06)
        XCTAssertGreaterThan(result.generatedTokens, 0)
        XCTAssertEqual(result.sourceKind, "platform")
        // A constant draw is all baseline: the net energy is (close to) zero, the raw is not.
        XCTAssertGreaterThan(result.rawTotalJoules, 0)
        XCTAssertLessThan(abs(result.totalJoules), 0.05 * result.rawTotalJoules)
        XCTAssertGreaterThan(progress.calls, 0)
        XCTAssertTrue(result.json.contains("baseline"))
    }
}

final class ProgressCounter: BenchListener, @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var calls: Int {
        lock.lock()
        defer { lock.unlock() }
        return n
    }
    func onProgress(progress: BenchProgress) -> Bool {
        lock.lock()
        n += 1
        lock.unlock()
        return true
    }
}

/// A value shared between test threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func get() -> T {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
    func set(_ new: T) { update { $0 = new } }
    func update(_ body: (inout T) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body(&value)
    }
}
