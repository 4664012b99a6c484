// swift-tools-version:5.9
// The SwiftUI chat app as an app package: open this folder in Xcode (or Swift Playgrounds)
// after scripts/build-xcframework has produced ios/JouleKit/JouleFFI.xcframework.
import AppleProductTypes
import PackageDescription

let package = Package(
    name: "JouleChat",
    platforms: [.iOS("16.0")],
    products: [
        .iOSApplication(
            name: "JouleChat",
            targets: ["AppModule"],
            bundleIdentifier: "dev.joule.chat",
            teamIdentifier: "",
            displayVersion: "0.1",
            bundleVersion: "1",
            appIcon: .placeholder(icon: .bolt),
            accentColor: .presetColor(.orange),
            supportedDeviceFamilies: [.pad, .phone],
            supportedInterfaceOrientations: [.portrait, .landscapeLeft, .landscapeRight]
        )
    ],
    dependencies: [.package(path: "../JouleKit")],
    targets: [
        .executableTarget(
            name: "AppModule",
            dependencies: [.product(name: "JouleKit", package: "JouleKit")],
            path: "Sources")
    ]
)
