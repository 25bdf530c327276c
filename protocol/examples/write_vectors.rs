//! Writes `protocol/vectors/` (one `.msgpack` file per example message and `vectors.json`) from the
//! definitions in `tests/support/vectors.rs`. Run after changing a vector on purpose:
//! `cargo run -p protocol --example write_vectors`; the `vectors` test then checks the files.

#![allow(clippy::print_stdout)] // a command-line tool

#[path = "../tests/support/vectors.rs"]
mod vectors;

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    std::fs::create_dir_all(&dir)?;
    let mut index = Vec::new();
    for vector in vectors::all() {
        let bytes = vector.bytes();
        let file = format!("{}.msgpack", vector.name);
        std::fs::write(dir.join(&file), &bytes)?;
        index.push(serde_json::json!({
            "name": vector.name,
            "file": file,
            "direction": vector.direction(),
            "valid": vector.error_code().is_none(),
            "error_code": vector.error_code().map(|c| c.as_str()),
            "description": vector.description,
            "hex": vectors::hex(&bytes),
            "reading": vectors::reading(&bytes),
        }));
        println!("{:<32} {}", vector.name, vectors::reading(&bytes));
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "protocol": "skirmish wire protocol v1",
        "about": "Each file is one WebSocket binary frame. `hex` repeats its bytes; `reading` is a JSON-like reading that keeps map key order and marks float widths (1.5f32 is a MessagePack float 32, 0xca). Valid client frames must decode to the reading; invalid ones must be refused with `error_code`. Server frames decode to the reading, and an encoder that writes the most compact integer and string forms reproduces them byte for byte.",
        "vectors": index,
    }))
    .map_err(std::io::Error::other)?;
    std::fs::write(dir.join("vectors.json"), json + "\n")?;
    Ok(())
}
