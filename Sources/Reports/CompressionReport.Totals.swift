extension CompressionReport {
    /// Whole-checkpoint sums over a report's tensor records (always derived, never stored).
    ///
    /// - `parameters = Σ elements`, `bytes_in = Σ bytes_in`, `bytes_out = Σ bytes_out` (each saturating
    ///   at `Int.max` rather than trapping on absurd inputs);
    /// - `ratio = bytes_in / bytes_out` (1 when both are 0, `+∞` when only `bytes_out` is 0);
    /// - `bits_per_weight = 8·bytes_out / parameters` (0 when there are no parameters).
    public struct Totals: Sendable, Equatable {
        /// `parameters`: Σ elements over the tensors.
        public let parameterCount: Int
        /// `bytes_in`: Σ input bytes.
        public let inputByteCount: Int
        /// `bytes_out`: Σ output bytes.
        public let outputByteCount: Int

        /// Sums the records.
        public init(_ tensors: [TensorRecord]) {
            var parameters = 0, bytesIn = 0, bytesOut = 0
            for t in tensors {
                parameters = Totals.saturatingAdd(parameters, t.parameterCount)
                bytesIn = Totals.saturatingAdd(bytesIn, t.inputByteCount)
                bytesOut = Totals.saturatingAdd(bytesOut, t.outputByteCount)
            }
            parameterCount = parameters
            inputByteCount = bytesIn
            outputByteCount = bytesOut
        }

        /// `bytes_in / bytes_out`: how many times smaller the output is.
        public var ratio: Double {
            if outputByteCount == 0 { return inputByteCount == 0 ? 1 : .infinity }
            return Double(inputByteCount) / Double(outputByteCount)
        }

        /// `8·bytes_out / parameters`.
        public var bitsPerWeight: Double {
            TensorRecord.bitsPerWeight(bytes: outputByteCount, parameters: parameterCount)
        }

        static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? (b > 0 ? Int.max : Int.min) : sum
        }
    }
}
