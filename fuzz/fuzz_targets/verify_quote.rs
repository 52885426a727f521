#![no_main]
//! Full verifier on arbitrary attest/signature bytes with a fixed AK: never
//! panics, never accepts (the fuzzer cannot forge an ECDSA signature).
use std::sync::OnceLock;

use attest_tpm::quote::selection;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::*;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    ak: AkPublicKey,
    values: PcrValues,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Deterministic key: the fuzzer must not depend on OS randomness.
        let mut rng = rand_chacha_like::Rng(0x5eed);
        let ak = SoftAk::generate(AkKind::EcdsaP256, &mut rng).expect("ak");
        let mut values = PcrValues::new();
        values.insert(HashAlg::Sha256, 0, vec![0; 32]).expect("pcr");
        Fixture { ak: ak.ak_public().expect("pub"), values }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let split = data.first().copied().unwrap_or(0) as usize;
    let rest = data.get(1..).unwrap_or_default();
    let (attest, sig) = rest.split_at(split.min(rest.len()));
    let sel = selection(&[(HashAlg::Sha256, &[0])]).expect("sel");
    let r = verify_quote(
        &QuoteEvidence { attest, signature: sig, pcr_values: &f.values },
        &f.ak,
        &QuotePolicy { expected_nonce: b"n", expected_selection: &sel, previous: None },
    );
    assert!(r.is_err());
});

mod rand_chacha_like {
    /// Tiny xorshift CSPRNG stand-in, only for a deterministic fuzz fixture.
    pub struct Rng(pub u64);
    impl rand_core::RngCore for Rng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u64() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for Rng {}
}
