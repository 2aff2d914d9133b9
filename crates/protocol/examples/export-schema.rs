//! Writes the JSON Schema of every wire type to `crates/protocol/schema/`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    std::fs::create_dir_all(&dir)?;
    for doc in switchboard_protocol::schema_documents() {
        std::fs::write(dir.join(doc.file_name), doc.to_pretty_json())?;
        println!("wrote schema/{}", doc.file_name);
    }
    Ok(())
}
