//! Compression of what the page ships: `x.br` and `x.gz` written beside `x`, which the relay serves to
//! browsers that accept them. Used for the page's wasm ([`crate::wasm`]), its bundle ([`crate::web`]) and
//! the bench's Pyodide files ([`crate::bench`]).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::tools;

/// Writes `path.br` and `path.gz` beside `path` (each unless it is newer already): the relay serves the
/// smallest one the browser accepts. Brotli ships the Python runtime in about 6 MB, gzip in 8.5, the wasm
/// itself is 22. The bench does the same to Pyodide's files.
pub fn beside(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = tools::modified(path)?;
    // The two take the machine's two cores: brotli's best levels are the slow part of a wasm build.
    std::thread::scope(|scope| {
        let brotli = scope.spawn(|| write_packed(path, "br", source, &bytes, brotli));
        let gzip = write_packed(path, "gz", source, &bytes, gzip);
        brotli
            .join()
            .map_err(|_| anyhow::anyhow!("brotli panicked"))??;
        gzip
    })
}

fn write_packed(
    path: &Path,
    extension: &str,
    source: SystemTime,
    bytes: &[u8],
    pack: fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<()> {
    let mut packed = path.as_os_str().to_owned();
    packed.push(format!(".{extension}"));
    let packed = PathBuf::from(packed);
    if tools::modified(&packed)? > source {
        return Ok(());
    }
    let started = Instant::now();
    let compressed = pack(bytes)?;
    std::fs::write(&packed, &compressed)
        .with_context(|| format!("writing {}", packed.display()))?;
    println!(
        "==> {extension} {}: {} → {} bytes in {:.1} s",
        path.display(),
        bytes.len(),
        compressed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, bytes)?;
    Ok(encoder.finish()?)
}

/// Quality 10 of 11 with the largest window: within 4% of 11's size in two thirds of its time.
fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 10,
        lgwin: 24,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}
