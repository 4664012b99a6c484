// swift-tools-version:5.9
// JouleKit: the generated uniffi Swift bindings (module `Joule`, copied into Sources/Joule by
// scripts/build-xcframework or scripts/test-swift; not committed) over the Rust library, plus
// `JouleChat`, a thin wrapper an app's view model can hold.
import PackageDescription

#if os(Linux)
// Linux (scripts/test-swift): the host's libjoule_ffi.so, header and module map from
// scripts/gen-bindings; the linker search path is passed on the command line.
let ffi: Target = .systemLibrary(name: "JouleFFI", path: "Sources/JouleFFI")
#else
// Apple platforms: the static libraries produced by scripts/build-xcframework on a Mac.
let ffi: Target = .binaryTarget(name: "JouleFFI", path: "JouleFFI.xcframework")
#endif

let package = Package(
    name: "JouleKit",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "JouleKit", targets: ["JouleKit", "Joule"])],
    targets: [
        ffi,
        .target(name: "Joule", dependencies: ["JouleFFI"], path: "Sources/Joule"),
        .target(name: "JouleKit", dependencies: ["Joule"], path: "Sources/JouleKit"),
        .testTarget(
            name: "JouleKitTests", dependencies: ["JouleKit", "Joule"], path: "Tests/JouleKitTests"),
    ]
)
