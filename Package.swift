// swift-tools-version:6.0
import PackageDescription

// Module graph (imports flow left to right only, as DESIGN.md draws it):
// CZstd, COpenBLAS, CLAPACKE -> TensorCore -> CheckpointFormats -> Recipes -> Reports -> Passes -> ModelPress -> modelpress
// Beside the CLI: Passes -> FuzzTargets (one fuzz target per reader) -> modelpress-fuzz (libFuzzer
// entry point when built with -DMODELPRESS_LIBFUZZER, else an in-process corpus/mutation driver).
let package = Package(
    name: "ModelPress",
    products: [
        .library(name: "ModelPress", targets: ["ModelPress"]),
        .executable(name: "modelpress", targets: ["modelpress"]),
        .executable(name: "modelpress-bench", targets: ["modelpress-bench"]),
        .executable(name: "modelpress-fuzz", targets: ["modelpress-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CLAPACKE"]),
        .target(
            name: "CheckpointFormats",
            dependencies: ["TensorCore", "CZstd"],
            // The block codecs call sqrtf/roundf from libm, which nothing else links on Linux.
            linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]
        ),
        .target(name: "Recipes", dependencies: ["TensorCore", "CheckpointFormats"]),
        .target(name: "Reports", dependencies: ["TensorCore", "CheckpointFormats"]),
        .target(name: "Passes", dependencies: ["TensorCore", "CheckpointFormats", "Recipes", "Reports"]),
        .target(name: "ModelPress", dependencies: ["TensorCore", "CheckpointFormats", "Recipes", "Reports", "Passes"]),
        .executableTarget(
            name: "modelpress",
            dependencies: ["ModelPress", "Passes", "Reports", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The benchmarks share TestSupport's child-process measurement (PeakMemory) with the tests.
        .executableTarget(name: "modelpress-bench", dependencies: ["ModelPress", "Passes", "Reports", "TestSupport"]),
        .target(name: "FuzzTargets", dependencies: ["TensorCore", "CheckpointFormats", "Recipes", "Passes"]),
        .executableTarget(name: "modelpress-fuzz", dependencies: ["FuzzTargets"]),
        .target(name: "TestSupport", dependencies: ["TensorCore", "CheckpointFormats"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "CheckpointFormatsTests", dependencies: ["CheckpointFormats", "TestSupport"]),
        // Tests/Fixtures holds data files read through #filePath (byte-exact references).
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "TestSupport"]),
        .testTarget(name: "PassesTests", dependencies: ["Passes", "TestSupport"]),
        .testTarget(name: "ModelPressTests", dependencies: ["ModelPress", "TestSupport"]),
        // Replays Fuzz/Corpus and Tests/Fixtures/fuzz-findings through every fuzz target.
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "TestSupport"]),
        .testTarget(name: "ModelPressCLITests", dependencies: ["modelpress", "TestSupport"]),
    ]
)
