/// The version of ModelPress, written into reports and printed by `modelpress --version`.
public enum ModelPressVersion {
    public static let string = "0.1.0"
}
