#if MODELPRESS_LIBFUZZER
import Foundation
import FuzzTargets

/// The libFuzzer glue: `LLVMFuzzerRunDriver` (from the `-sanitize=fuzzer` runtime) calls
/// `fuzzOneInput` for each input, on the target `MODELPRESS_FUZZ_TARGET` names.
enum LibFuzzerEntry {
    nonisolated(unsafe) static var target: (any FuzzTarget)?

    static func run() -> Never {
        let name = ProcessInfo.processInfo.environment["MODELPRESS_FUZZ_TARGET"] ?? ""
        guard let target = FuzzRegistry.target(named: name) else {
            FileHandle.standardError.write(Data("set MODELPRESS_FUZZ_TARGET to one of: \(FuzzRegistry.all.map(\.name).joined(separator: ", "))\n".utf8))
            exit(64)
        }
        self.target = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// libFuzzer's per-input entry point (also what its own `main` would call).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = LibFuzzerEntry.target?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
