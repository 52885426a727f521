#![no_main]
//! Binary COPY stream of audit rows (PostgreSQL audit verification): never
//! panic, and the answer does not depend on how the bytes are chunked.
use attest_store::CopyRows;
use libfuzzer_sys::fuzz_target;

fn decode(chunks: &[&[u8]]) -> Result<Vec<(i64, String)>, attest_store::CopyError> {
    let mut rows = CopyRows::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        rows.feed(chunk, |fields, stored| seen.push((fields.id, stored.to_owned())))?;
    }
    rows.finish()?;
    Ok(seen)
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(&[data]);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(cut);
    let split = decode(&[a, b]);
    // A failure may be reported differently depending on what arrived
    // first, but success and the decoded rows may not.
    assert_eq!(whole.is_ok(), split.is_ok());
    if let (Ok(w), Ok(s)) = (whole, split) {
        assert_eq!(w, s);
    }
});
