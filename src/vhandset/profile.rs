//! Firmware profiles: data files that say what a handset is and what traffic it emits.
//! (Being written: the API below is fixed.)

use std::collections::BTreeMap;
use std::path::Path;

use super::VhandsetError;

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

impl Profile {
    pub fn builtin_names() -> &'static [&'static str] {
        &["aosp-clean", "miui-cloud-default", "miui-cloud-optin"]
    }
    pub fn builtin(name: &str) -> Result<Profile, VhandsetError> {
        Err(VhandsetError::UnknownProfile { name: name.to_string(), known: Self::builtin_names().join(", ") })
    }
    pub fn load(path: &Path) -> Result<Profile, VhandsetError> {
        Err(VhandsetError::BadProfile { path: path.display().to_string(), message: "not yet".into() })
    }
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }
}
