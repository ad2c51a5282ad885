//! The body of the `provenance_parse` fuzz target: every parser of untrusted input in this
//! crate, run over the same bytes. None may panic, whatever the input.

use crate::{BundleFormat, parse_bundles, parse_trusted_roots};

/// Parses `data` as a bundle file (both layouts), as a trusted-root file and as a DSSE payload,
/// and reads the leaf issuer of every bundle that parses. Results are discarded: the property is
/// "no panic, bounded work".
pub fn check_parse(data: &[u8]) {
    for format in [BundleFormat::Json, BundleFormat::Jsonl] {
        if let Ok(bundles) = parse_bundles(data, format) {
            for bundle in &bundles {
                let _ = bundle.parsed.leaf_issuer_org();
                let _ = bundle.parsed.tlog_entries();
            }
        }
    }
    if let Ok(roots) = parse_trusted_roots(data) {
        for root in &roots.roots {
            let _ = root.ca_orgs();
        }
    }
    let _ = crate::statement::parse(data);
}

#[cfg(test)]
mod tests {
    use super::check_parse;

    #[test]
    fn hostile_inputs_do_not_panic() {
        for input in [
            &b""[..],
            b"\xff\xfe",
            b"{}",
            b"[]",
            b"null\nnull",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"certificate\":{\"rawBytes\":\"MAA=\"}},\"dsseEnvelope\":{\"payload\":\"\",\"payloadType\":\"\",\"signatures\":[{\"sig\":\"\"}]}}",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.trustedroot+json;version=0.1\",\"certificateAuthorities\":[{\"uri\":\"\",\"certChain\":{\"certificates\":[{\"rawBytes\":\"MAA=\"}]}}]}",
            b"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{}],\"predicateType\":1}",
        ] {
            check_parse(input);
        }
        check_parse("[".repeat(1 << 16).as_bytes());
        check_parse("{\"a\":".repeat(1 << 12).as_bytes());
    }
}
