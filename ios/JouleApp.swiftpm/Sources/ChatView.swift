import SwiftUI
import UniformTypeIdentifiers

struct ChatView: View {
    @ObservedObject var model: ChatModel
    @State private var input = ""
    @State private var pathInput = ""
    @State private var picking = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 8) {
                modelBar
                ScrollView {
                    LazyVStack(alignment: .leading, spacing: 12) {
                        ForEach(model.turns) { turn in
                            Text(turn.user).bold().frame(maxWidth: .infinity, alignment: .trailing)
                            Text(turn.answer).textSelection(.enabled)
                        }
                    }
                    .padding(.horizontal)
                }
                if !model.stats.isEmpty {
                    Text(model.stats).font(.footnote.monospacedDigit()).foregroundStyle(.secondary)
                }
                if let error = model.error {
                    Text(error).font(.footnote).foregroundStyle(.red)
                }
                inputBar
            }
            .navigationTitle("Joule")
            .fileImporter(isPresented: $picking, allowedContentTypes: [.data]) { result in
                if case .success(let url) = result { model.importModel(from: url) }
            }
        }
    }

    private var modelBar: some View {
        VStack(alignment: .leading) {
            Text(model.modelLabel).font(.caption).lineLimit(2)
            HStack {
                TextField("model path (.gguf)", text: $pathInput)
                    .textFieldStyle(.roundedBorder)
                    .autocorrectionDisabled()
                Button("Load") { model.load(path: pathInput) }.disabled(pathInput.isEmpty || model.busy)
                Button("Files…") { picking = true }.disabled(model.busy)
            }
        }
        .padding(.horizontal)
    }

    private var inputBar: some View {
        HStack {
            TextField("Message", text: $input).textFieldStyle(.roundedBorder)
            if model.busy {
                Button("Cancel", role: .destructive) { model.cancel() }
            } else {
                Button("Send") {
                    model.send(input)
                    input = ""
                }
                .disabled(input.isEmpty)
                Button("Reset") { model.reset() }
            }
        }
        .padding()
    }
}
