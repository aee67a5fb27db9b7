import Foundation
import FuzzTargets

/// `modelpress-fuzz`: the fuzz targets of `FuzzTargets` behind two drivers.
///
/// Built with `-sanitize=fuzzer,address -DMODELPRESS_LIBFUZZER` (`make fuzz`), it is a libFuzzer
/// binary: the target comes from `MODELPRESS_FUZZ_TARGET`, every argument goes to libFuzzer. Built
/// normally, it is an in-process driver: `list`, `replay TARGET PATH...` and
/// `mutate TARGET|all --corpus DIR [--inputs N] [--seed S] [--crash-dir DIR] [--timeout S]`. Invariant:
/// exit 0 when every input was accepted or rejected with an error, 64 on a usage error; a crash
/// kills the process, leaving the input in `--crash-dir` (`current-<target>`).
@main
struct FuzzMain {
    static func main() {
        // The zstd reader decodes into a temporary file: keep those in memory, not on disk.
        if FileManager.default.fileExists(atPath: "/dev/shm") { setenv("TMPDIR", "/dev/shm", 1) }
        #if MODELPRESS_LIBFUZZER
        LibFuzzerEntry.run()
        #else
        exit(InProcessDriver(arguments: Array(CommandLine.arguments.dropFirst())).run())
        #endif
    }
}
