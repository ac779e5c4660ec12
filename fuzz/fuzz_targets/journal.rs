//! The journal reader: any bytes as a transaction's manifest.json are read
//! or refused with a message; a manifest it reads survives a round trip.
#![no_main]

use gpu_setup_apply::journal::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = 1;
    match Manifest::parse(data, id) {
        Ok(m) => {
            let again = serde_json::to_vec(&m).expect("a manifest serializes");
            assert_eq!(Manifest::parse(&again, id), Ok(m));
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
