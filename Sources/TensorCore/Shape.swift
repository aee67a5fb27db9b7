/// A row-major tensor shape (outermost dimension first, as safetensors and numpy write it).
///
/// Invariant: every dimension is non-negative and the element count (the product of the dimensions,
/// 1 for a scalar `[]`) fits in `Int`. Shapes read from files are built with `init(validating:)`, which
/// checks this instead of trapping.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public let dimensions: [Int]
    /// Product of the dimensions; 1 for a scalar.
    public let elementCount: Int

    /// Builds a shape from untrusted dimensions, throwing `TensorError` on negative dimensions or overflow.
    public init(validating dimensions: [Int]) throws(TensorError) {
        var product = 1
        for d in dimensions {
            guard d >= 0 else { throw .negativeDimension(dimensions) }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .elementCountOverflow(dimensions) }
            product = p
        }
        self.dimensions = dimensions
        self.elementCount = product
    }

    /// Builds a shape from trusted dimensions (programmer input); traps on invalid ones.
    public init(_ dimensions: [Int]) {
        do { try self.init(validating: dimensions) } catch { preconditionFailure("invalid shape \(dimensions)") }
    }

    public var rank: Int { dimensions.count }

    /// For a matrix view: the outermost dimension is the row count, the rest form a row
    /// (`[out, in]` gives rows = out, columns = in; a 1-D tensor is one row; a scalar is 1x1).
    public var rowCount: Int { dimensions.count <= 1 ? 1 : dimensions[0] }
    public var columnCount: Int {
        if dimensions.isEmpty { return 1 }
        if dimensions.count == 1 { return dimensions[0] }
        return dimensions[0] == 0 ? 0 : elementCount / dimensions[0]
    }

    /// `[4096, 11008]`
    public var description: String { "[" + dimensions.map(String.init).joined(separator: ", ") + "]" }
}
