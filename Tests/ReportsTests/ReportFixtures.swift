import Foundation
import TensorCore
import Reports

/// Hand-made reports whose every number is known, shared by the report and diff tests.
enum ReportFixtures {
    /// A 4-bit tensor with calibration error and a lossless one (sqnr_db +∞, written null).
    static let twoTensors = CompressionReport(
        version: "0.3.0", input: "models/pico.safetensors", output: "out/pico.gguf", recipe: "Recipes/w4.recipe",
        tensors: [
            TensorRecord(
                name: "model.layers.0.mlp.down_proj.weight", shape: Shape([4, 8]), inputDType: "BF16",
                encoding: "int4/group:8", sparsity: 0.25, inputByteCount: 64, outputByteCount: 20,
                relativeError: 0.0625, sqnrDecibels: 24.08, maxAbsoluteError: 0.125, cosine: 0.998,
                outputRelativeError: 0.00390625),
            TensorRecord(
                name: "lm_head.weight", shape: Shape([8]), inputDType: "F32", encoding: "F16", sparsity: 0,
                inputByteCount: 32, outputByteCount: 16, relativeError: 0, sqnrDecibels: .infinity,
                maxAbsoluteError: 0, cosine: 1),
        ])

    /// `twoTensors.renderJSON()`, written out by hand from the schema.
    static let twoTensorsJSON = """
    {
      "tool": "modelpress",
      "version": "0.3.0",
      "input": "models/pico.safetensors",
      "output": "out/pico.gguf",
      "recipe": "Recipes/w4.recipe",
      "totals": {
        "parameters": 40,
        "bytes_in": 96,
        "bytes_out": 36,
        "ratio": 2.6666666666666665,
        "bits_per_weight": 7.2
      },
      "tensors": [
        {
          "name": "model.layers.0.mlp.down_proj.weight",
          "shape": [4, 8],
          "dtype_in": "BF16",
          "encoding": "int4/group:8",
          "bits_per_weight": 5.0,
          "sparsity": 0.25,
          "bytes_in": 64,
          "bytes_out": 20,
          "relative_error": 0.0625,
          "sqnr_db": 24.08,
          "max_abs_error": 0.125,
          "cosine": 0.998,
          "output_relative_error": 0.00390625
        },
        {
          "name": "lm_head.weight",
          "shape": [8],
          "dtype_in": "F32",
          "encoding": "F16",
          "bits_per_weight": 16.0,
          "sparsity": 0.0,
          "bytes_in": 32,
          "bytes_out": 16,
          "relative_error": 0.0,
          "sqnr_db": null,
          "max_abs_error": 0.0,
          "cosine": 1.0
        }
      ]
    }

    """

    /// A tensor record with the given name and relative error; everything else fixed.
    static func record(_ name: String, relativeError: Double, bytesOut: Int = 8, encoding: String = "Q4_K") -> TensorRecord {
        TensorRecord(
            name: name, shape: Shape([4, 4]), inputDType: "F32", encoding: encoding, sparsity: 0,
            inputByteCount: 64, outputByteCount: bytesOut, relativeError: relativeError,
            sqnrDecibels: relativeError == 0 ? .infinity : -20 * log10(relativeError),
            maxAbsoluteError: relativeError, cosine: 1 - relativeError * relativeError / 2)
    }

    static func report(_ tensors: [TensorRecord], output: String) -> CompressionReport {
        CompressionReport(version: "0.3.0", input: "in.safetensors", output: output, recipe: nil, tensors: tensors)
    }
}
