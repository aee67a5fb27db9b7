/// Marks an error caused by bad input data: a malformed checkpoint, a bad recipe or calibration file.
///
/// The command line maps these to exit code 65 (`EX_DATAERR`); other errors map to 1.
/// Conforming errors describe themselves with the file and, where known, the tensor or line.
public protocol InputDataError: Error, CustomStringConvertible {}
