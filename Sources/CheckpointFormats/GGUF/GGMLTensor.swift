import TensorCore

/// A tensor stored in a ggml layout that is not a plain dtype: block-quantized types (rows of
/// `ne[0]` elements cut into blocks, each block = scales + packed codes) or a future type id kept
/// as opaque bytes.
///
/// Invariant: for a known type, `storage.count == rowByteCount(ne[0]) * (elementCount / ne[0])`.
public struct GGMLTensor: Sendable {
    /// The stored ggml type id.
    public let typeID: UInt32
    /// The known type, or nil for an opaque future id.
    public let type: GGMLType?
    /// Numpy-order shape (outermost first; GGUF's ne reversed).
    public let shape: Shape
    public let storage: ByteStorage

    public init(type: GGMLType, shape: Shape, storage: ByteStorage) {
        self.typeID = type.rawValue
        self.type = type
        self.shape = shape
        self.storage = storage
    }

    public init(opaqueTypeID: UInt32, shape: Shape, storage: ByteStorage) {
        self.typeID = opaqueTypeID
        self.type = GGMLType(rawValue: opaqueTypeID)
        self.shape = shape
        self.storage = storage
    }

    /// `Q4_K`, or `ggml type 57` for an opaque id.
    public var typeName: String { type?.name ?? "ggml type \(typeID)" }
}
