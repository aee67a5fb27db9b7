import ArgumentParser
import ModelPress

@main
struct ModelPressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modelpress",
        abstract: "Compress neural-network checkpoints (safetensors, GGUF) with recipe files.",
        discussion: """
        Exit codes: 0 success, 1 I/O or runtime failure, 2 diff --fail-above found a regression, \
        64 usage error, 65 bad input data (malformed checkpoint, bad recipe or calibration file).
        """,
        version: ModelPressVersion.string,
        subcommands: [InspectCommand.self, CompressCommand.self, CheckCommand.self, PassesCommand.self, DecompressCommand.self,
                      ConvertCommand.self, MergeLoraCommand.self, ReportCommand.self, DiffCommand.self, SweepCommand.self]
    )

    static func main() {
        PeakMemoryRecord.installIfRequested()
        main(nil)
    }
}
