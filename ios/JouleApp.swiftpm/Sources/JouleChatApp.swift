import SwiftUI

@main
struct JouleChatApp: App {
    @StateObject private var chat = ChatModel()

    var body: some Scene {
        WindowGroup {
            TabView {
                ChatView(model: chat)
                    .tabItem { Label("Chat", systemImage: "bubble.left.and.bubble.right") }
                BenchView(model: chat)
                    .tabItem { Label("Battery bench", systemImage: "bolt.batteryblock") }
            }
        }
    }
}
