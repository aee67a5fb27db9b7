#!/usr/bin/env bash
# Exits 0 when swiftc can link a libFuzzer + AddressSanitizer binary (what `make fuzz` builds).
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/probe.swift" <<'SWIFT'
@_cdecl("LLVMFuzzerTestOneInput") public func probe(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { 0 }
SWIFT
swiftc -sanitize=fuzzer,address -parse-as-library -use-ld=lld "$dir/probe.swift" -o "$dir/probe" >/dev/null 2>&1
