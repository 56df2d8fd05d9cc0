//! Firmware profiles: data files that say what a handset is and what traffic it emits.
//! (STUB — being written.)

use std::collections::BTreeMap;

/// A firmware profile (see `profiles/*.yaml`).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// System properties (`getprop`), e.g. `ro.product.model`.
    pub props: BTreeMap<String, String>,
    /// The handset's identifiers by kind (`imei`, `imsi`, `iccid`, `phone_number`, `android_id`, `serial`).
    pub identifiers: BTreeMap<String, String>,
}
