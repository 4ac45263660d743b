//! Generates the ONNX protobuf types from `proto/onnx.proto3` (ONNX's own schema, see
//! `proto/README.md`) with a pure-Rust protobuf compiler, so no `protoc` is needed.
fn main() {
    let proto = "proto/onnx.proto3";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"]).unwrap_or_else(|e| panic!("{proto}: {e}"));
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the ONNX types from {proto}: {e}"));
}
