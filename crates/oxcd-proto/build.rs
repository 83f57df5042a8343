//! Compiles our .proto files with protox (pure Rust, no system protoc) and generates prost
//! messages plus tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "kv.proto",
        "auth.proto",
        "rpc.proto",
        "etcdserver.proto",
        "raft_internal.proto",
        "lease.proto",
        "v3lock.proto",
        "v3election.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".")
        .codec_path("crate::codec::EtcdCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
