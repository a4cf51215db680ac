//! Request body helpers the sinks and the sender share: stored events framed as `{"batch":[...]}` (docs/PROTOCOL.md)
//! by concatenation, and gzip.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The JSON body for `records` (each a serialized event object).
pub(crate) fn json_body<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let length: usize = records.iter().map(|record| record.as_ref().len() + 1).sum();
    let mut body = Vec::with_capacity(length + 12);
    body.extend_from_slice(b"{\"batch\":[");
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record.as_ref());
    }
    body.extend_from_slice(b"]}");
    body
}

/// `body` compressed with gzip (fast level: bodies are small and the CPU is the app's).
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn records_are_framed_as_a_batch_array() {
        let body = json_body(&[br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()]);
        assert_eq!(body, br#"{"batch":[{"a":1},{"b":2}]}"#);
    }

    #[test]
    fn gzip_round_trips() {
        let body = json_body(&[br#"{"a":1}"#.to_vec()]);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body).unwrap()[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }
}
