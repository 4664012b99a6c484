import Foundation
import JouleKit
import SwiftUI

/// View state only: every decision (streaming, UTF-8, history, energy, bench) is made in Rust
/// behind `JouleChat`; this class moves its results onto the main thread for SwiftUI.
/// (`ObservableObject`, not `@Observable`, so the same code builds with Linux toolchains.)
final class ChatModel: ObservableObject {
    struct Turn: Identifiable {
        let id = UUID()
        let user: String
        var answer: String
    }

    @Published var turns: [Turn] = []
    @Published var modelPath: String = ""
    @Published var modelLabel: String = "no model loaded"
    @Published var stats: String = ""
    @Published var busy = false
    @Published var error: String?
    @Published var benchJSON: String = ""
    @Published var benchProgress: String = ""
    /// iOS does not expose the battery's capacity; the user enters the rated figure.
    @Published var batteryWattHours: Double = 12.0

    private var chat: JouleChat?
    private let worker = DispatchQueue(label: "dev.joule.chat.worker", qos: .userInitiated)

    func load(path: String) {
        busy = true
        error = nil
        let capacity = batteryWattHours
        worker.async {
            let result = Result { try JouleChat(modelPath: path, probe: makeBatteryProbe(ratedWattHours: capacity)) }
            DispatchQueue.main.async {
                self.busy = false
                switch result {
                case .success(let chat):
                    self.chat = chat
                    self.modelPath = path
                    self.modelLabel = chat.modelDescription
                    self.turns = []
                case .failure(let err):
                    self.error = JouleChat.describe(err)
                }
            }
        }
    }

    /// Copies a file picked from Files into the app's storage (the picker's URL is only
    /// readable while its security scope is open), then loads it.
    func importModel(from url: URL) {
        busy = true
        worker.async {
            let result = Result { try ModelFiles.copyIntoAppStorage(url) }
            DispatchQueue.main.async {
                self.busy = false
                switch result {
                case .success(let local): self.load(path: local.path)
                case .failure(let err): self.error = err.localizedDescription
                }
            }
        }
    }

    func send(_ text: String) {
        guard let chat, !text.isEmpty, !busy else { return }
        busy = true
        error = nil
        turns.append(Turn(user: text, answer: ""))
        let index = turns.count - 1
        worker.async {
            let result = Result {
                try chat.send(text) { piece in
                    DispatchQueue.main.async { self.turns[index].answer += piece }
                }
            }
            DispatchQueue.main.async {
                self.busy = false
                switch result {
                case .success(let stats): self.stats = stats.line
                case .failure(let err): self.error = JouleChat.describe(err)
                }
            }
        }
    }

    func cancel() { chat?.cancel() }

    func reset() {
        guard !busy else { return }
        try? chat?.reset()
        turns = []
        stats = ""
    }

    func runBench(seconds: Double) {
        guard let chat, !busy else { return }
        busy = true
        benchJSON = ""
        worker.async {
            let result = Result {
                try chat.runBatteryBench(seconds: seconds) { progress in
                    DispatchQueue.main.async { self.benchProgress = progress }
                }
            }
            DispatchQueue.main.async {
                self.busy = false
                switch result {
                case .success(let json): self.benchJSON = json
                case .failure(let err): self.error = JouleChat.describe(err)
                }
            }
        }
    }
}
