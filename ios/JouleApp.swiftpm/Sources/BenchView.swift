import SwiftUI

struct BenchView: View {
    @ObservedObject var model: ChatModel
    @State private var seconds: Double = 600

    var body: some View {
        NavigationStack {
            Form {
                Section("Battery") {
                    Stepper(value: $model.batteryWattHours, in: 4...40, step: 0.5) {
                        Text("Rated capacity: \(model.batteryWattHours, specifier: "%.1f") Wh")
                    }
                    Text("iOS reports the battery level in 1 % steps: energy figures are coarse "
                        + "and need a long run (minutes) unplugged. Reload the model after changing the capacity.")
                        .font(.footnote).foregroundStyle(.secondary)
                }
                Section("Run") {
                    Stepper(value: $seconds, in: 60...3600, step: 60) {
                        Text("Duration: \(Int(seconds)) s")
                    }
                    Button(model.busy ? "Running…" : "Run battery bench") { model.runBench(seconds: seconds) }
                        .disabled(model.busy)
                    if model.busy { Button("Cancel", role: .destructive) { model.cancel() } }
                    if !model.benchProgress.isEmpty { Text(model.benchProgress).font(.footnote) }
                }
                if !model.benchJSON.isEmpty {
                    Section("Result") {
                        ShareLink(item: model.benchJSON)
                        Text(model.benchJSON).font(.caption.monospaced()).textSelection(.enabled)
                    }
                }
            }
            .navigationTitle("Battery bench")
        }
    }
}
