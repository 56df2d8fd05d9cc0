//! Evidence: a run directory's `manifest.json` (SHA-256 of every file in it, tattle's version, the
//! scenario's hash, the device's identity and firmware fingerprint, clock offsets, the capture
//! source), its check (`tattle verify RUN_DIR`) and its minisign signature (`--sign KEY` writes
//! `manifest.json.minisig`, which the stock `minisign -Vm manifest.json -p KEY.pub` verifies).
//! Format and guarantees: docs/evidence.md.
//!
//! Signatures use jedisct1's `minisign` crate (the reference tool's author; same file formats,
//! prehashed BLAKE2b Ed25519 signatures that `minisign` 0.9+ verifies by default) rather than
//! hand-made Ed25519 framing.
//!
//! The manifest holds no identifier: the device identity is the run's redacted one without its adb
//! serial (a USB serial is `ro.serialno`, an identifier of the phone), and files are named by path
//! and hash only.
//!
//! Must not touch: what the other files say (it hashes bytes), the terminal, exit codes.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::capture::SourceRecord;
use crate::device::DeviceIdentity;
use crate::device::clock::ClockRecord;

/// The manifest's name in a run directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The detached minisign signature of the manifest.
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";
/// `format_version` of [`Manifest`].
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// A manifest lists the files of one run: far below this. Bounds what `verify` reads of a
/// manifest it is given.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
/// Files listed; a run directory holds a handful.
const MAX_FILES: usize = 10_000;
/// Subdirectory depth walked.
const MAX_DEPTH: usize = 8;
/// The environment variable holding the password of an encrypted minisign secret key.
pub const PASSWORD_ENV: &str = "TATTLE_SIGN_PASSWORD";

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A run directory's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Manifest {
    pub format_version: u32,
    /// tattle's version (`CARGO_PKG_VERSION`) that made the run.
    pub tattle_version: String,
    /// When the manifest was written (UTC, `20261125T083200Z`).
    pub created: String,
    pub scenario: ManifestScenario,
    /// The device as it reported itself, redacted, without its adb serial.
    pub device: ManifestDevice,
    /// The snapshot key (`brand-device-id-incremental` of the fingerprint, or `--firmware`).
    pub firmware: String,
    /// The device's clock read at the start and the end, and whose clock the capture is on.
    pub clock: ClockRecord,
    /// Which capture source the run used, and how.
    pub capture_source: SourceRecord,
    /// Every file of the run directory but the manifest and its signature, sorted by path.
    pub files: Vec<FileEntry>,
}

/// Which scenario the run followed, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ManifestScenario {
    pub name: String,
    /// The file it was read from (`<builtin>/send-sms.yaml` for built-ins).
    pub file: String,
    /// SHA-256 (hex) of the scenario file's bytes.
    pub sha256: String,
}

/// The device's identity in a manifest: `run.json`'s `device` without `serial`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ManifestDevice {
    pub manufacturer: String,
    pub model: String,
    pub product: String,
    pub device: String,
    pub brand: String,
    /// `ro.build.fingerprint`, whole.
    pub fingerprint: String,
    pub build_id: String,
    pub incremental: String,
    pub security_patch: Option<String>,
    pub baseband: Option<String>,
    pub android_release: String,
    pub sdk: u32,
}

impl From<DeviceIdentity> for ManifestDevice {
    /// From an identity already redacted.
    fn from(d: DeviceIdentity) -> Self {
        ManifestDevice {
            manufacturer: d.manufacturer,
            model: d.model,
            product: d.product,
            device: d.device,
            brand: d.brand,
            fingerprint: d.fingerprint,
            build_id: d.build_id,
            incremental: d.incremental,
            security_patch: d.security_patch,
            baseband: d.baseband,
            android_release: d.android_release,
            sdk: d.sdk,
        }
    }
}

/// One file of the run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEntry {
    /// Relative to the run directory, `/`-separated.
    pub path: String,
    /// SHA-256 (hex) of its bytes.
    pub sha256: String,
    pub bytes: u64,
}

/// What `verify` reads of a manifest: only what it checks, so that a manifest of a later minor
/// version (more fields) still verifies.
#[derive(Debug, Deserialize)]
struct ManifestFiles {
    format_version: u32,
    files: Vec<FileEntry>,
}

/// Everything that can go wrong writing, reading or signing evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: no {MANIFEST_FILE}\n  help: is this a run directory? runs made by tattle before 0.1 \
         have none; `tattle verify` checks runs that do",
        dir.display()
    )]
    NoManifest { dir: PathBuf },
    #[error("{}: {what}\n  help: {help}", path.display())]
    Key {
        path: PathBuf,
        what: String,
        help: String,
    },
    #[error(
        "the run directory holds more than {MAX_FILES} files or is nested deeper than {MAX_DEPTH}"
    )]
    TooLarge,
    /// Something in the run directory is neither a file nor a directory.
    #[error("{path}: not a regular file (a symlink, FIFO or device): tattle never writes one")]
    NotRegular { path: String },
}

/// Hashes every file under `dir` but the manifest and its signature.
pub fn hash_files(dir: &Path) -> Result<Vec<FileEntry>, EvidenceError> {
    let mut out = Vec::new();
    walk(dir, dir, 0, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<FileEntry>,
) -> Result<(), EvidenceError> {
    if depth > MAX_DEPTH {
        return Err(EvidenceError::TooLarge);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvidenceError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        let rel = relative(root, &path);
        if depth == 0 && (rel == MANIFEST_FILE || rel == SIGNATURE_FILE) {
            continue;
        }
        if kind.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if !kind.is_file() {
            // A symlink, FIFO or device was not written by tattle, and opening one could read
            // forever (`/dev/zero`) or block (a FIFO): never followed, reported.
            return Err(EvidenceError::NotRegular {
                path: tattle_analysis::sanitize(&rel),
            });
        } else {
            if out.len() >= MAX_FILES {
                return Err(EvidenceError::TooLarge);
            }
            let (sha256, bytes) = hash_file(&path)?;
            out.push(FileEntry {
                path: rel,
                sha256,
                bytes,
            });
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// SHA-256 and size of a file, read in chunks (captures are large).
fn hash_file(path: &Path) -> Result<(String, u64), EvidenceError> {
    let err = |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Writes `manifest.json` (0600) into `dir`, listing every file there now.
pub fn write_manifest(dir: &Path, mut manifest: Manifest) -> Result<Manifest, EvidenceError> {
    manifest.files = hash_files(dir)?;
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    write_private(&dir.join(MANIFEST_FILE), text.as_bytes())?;
    Ok(manifest)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| EvidenceError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// A minisign secret key, opened once before a run so that a wrong key or password fails before
/// anything is captured. Its `Debug` shows nothing of the key.
pub struct SigningKey {
    key: minisign::SecretKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Opens the secret key `minisign -G` wrote at `path`. An encrypted key (minisign's default)
    /// needs its `password` (the CLI reads `TATTLE_SIGN_PASSWORD`); one made with `minisign -G -W`
    /// needs none. Never prompts.
    pub fn load(path: &Path, password: Option<String>) -> Result<SigningKey, EvidenceError> {
        let key_err = |what: String, help: &str| EvidenceError::Key {
            path: path.to_path_buf(),
            what,
            help: help.to_string(),
        };
        let text = read_bounded(path, 64 * 1024)?;
        let text = String::from_utf8(text).map_err(|_| {
            key_err(
                "not a minisign secret key (not text)".into(),
                "give the `.key` file `minisign -G` wrote",
            )
        })?;
        let not_a_key = |_| {
            key_err(
                "not a minisign secret key".into(),
                "give the `.key` file `minisign -G` wrote (not the `.pub`)",
            )
        };
        let text = repair_unencrypted_checksum(&text).unwrap_or(text);
        let boxed = || minisign::SecretKeyBox::from_string(&text);
        let key = match minisign::SecretKey::from_unencrypted_box(boxed().map_err(not_a_key)?) {
            Ok(key) => key,
            Err(e) if !e.to_string().contains("encrypted") => {
                return Err(key_err(
                    format!("not a minisign secret key ({e})"),
                    "give the `.key` file `minisign -G` wrote (not the `.pub`)",
                ));
            }
            Err(_) => {
                let Some(password) = password else {
                    return Err(key_err(
                        "the secret key is password-protected".into(),
                        "put its password in the TATTLE_SIGN_PASSWORD environment variable, or \
                         make a key without one for CI: `minisign -G -W -p tattle.pub -s tattle.key`",
                    ));
                };
                minisign::SecretKey::from_box(boxed().map_err(not_a_key)?, Some(password)).map_err(|e| {
                    key_err(
                        format!("cannot open the secret key: {e}"),
                        "check TATTLE_SIGN_PASSWORD, and that this is the `.key` file `minisign -G` wrote",
                    )
                })?
            }
        };
        Ok(SigningKey { key })
    }
}

/// Debian's `minisign -G -W` (0.11) writes an unencrypted key with an all-zero checksum, which the
/// crate takes for a corrupted or still-encrypted key; the C tool does not check it for such keys.
/// Returns the key text with the checksum computed as minisign defines it (BLAKE2b-256 of the
/// signature algorithm, key id and secret key), for an unencrypted key with a zero checksum only.
fn repair_unencrypted_checksum(text: &str) -> Option<String> {
    use base64::Engine as _;
    use blake2::digest::{Update as _, VariableOutput as _};
    // sig_alg 2, kdf_alg 2, chk_alg 2, salt 32, opslimit 8, memlimit 8, key id 8, key 64, chk 32.
    const KEY_ID: std::ops::Range<usize> = 54..62;
    const SECRET: std::ops::Range<usize> = 62..126;
    const CHECKSUM: std::ops::Range<usize> = 126..158;
    let mut lines = text.lines();
    let comment = lines.next()?;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(lines.next()?.trim()).ok()?;
    if bytes.len() != CHECKSUM.end
        || bytes[2..4] != [0, 0]
        || bytes[CHECKSUM].iter().any(|&b| b != 0)
    {
        return None;
    }
    let mut hasher = blake2::Blake2bVar::new(CHECKSUM.len()).ok()?;
    hasher.update(&bytes[0..2]);
    hasher.update(&bytes[KEY_ID]);
    hasher.update(&bytes[SECRET]);
    hasher.finalize_variable(&mut bytes[CHECKSUM]).ok()?;
    Some(format!("{comment}\n{}\n", engine.encode(&bytes)))
}

/// Signs `dir/manifest.json` into `dir/manifest.json.minisig` (0600), with a trusted comment naming
/// tattle's version, the run and the time.
pub fn sign_manifest(dir: &Path, key: &SigningKey) -> Result<PathBuf, EvidenceError> {
    let manifest = dir.join(MANIFEST_FILE);
    let file = std::fs::File::open(&manifest).map_err(|source| EvidenceError::Io {
        path: manifest.clone(),
        source,
    })?;
    let run = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trusted = format!(
        "tattle {} manifest of run {} timestamp:{}",
        env!("CARGO_PKG_VERSION"),
        tattle_analysis::sanitize(&run),
        crate::device::now_unix() as u64
    );
    let signature = minisign::sign(
        None,
        &key.key,
        file,
        Some(&trusted),
        Some("signature from tattle (minisign format)"),
    )
    .map_err(|e| EvidenceError::Io {
        path: manifest.clone(),
        source: std::io::Error::other(format!("cannot sign: {e}")),
    })?;
    let path = dir.join(SIGNATURE_FILE);
    write_private(&path, signature.into_string().as_bytes())?;
    Ok(path)
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, EvidenceError> {
    let err = |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > limit {
        return Err(err(std::io::Error::other(format!(
            "larger than {limit} bytes: not the file tattle wrote"
        ))));
    }
    Ok(bytes)
}

/// What `verify` found wrong, one problem per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The manifest itself cannot be read as one.
    BadManifest(String),
    /// A listed file's bytes changed.
    Changed { path: String },
    /// A listed file is gone.
    Missing { path: String },
    /// A file the manifest does not list.
    Unlisted { path: String },
    /// The signature does not verify with the given public key.
    BadSignature(String),
    /// A symlink, FIFO or device in the run directory (the files were not compared).
    NotRegular { path: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadManifest(why) => write!(f, "{MANIFEST_FILE}: {why}"),
            Problem::Changed { path } => write!(
                f,
                "{path}: changed since the manifest was written (its SHA-256 differs)"
            ),
            Problem::Missing { path } => write!(f, "{path}: listed in the manifest but missing"),
            Problem::Unlisted { path } => {
                write!(f, "{path}: not listed in the manifest (added later)")
            }
            Problem::BadSignature(why) => write!(f, "{SIGNATURE_FILE}: {why}"),
            Problem::NotRegular { path } => write!(
                f,
                "{path}: not a regular file (a symlink, FIFO or device): the files were not compared"
            ),
        }
    }
}

/// The result of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Files whose hash matched.
    pub files_ok: usize,
    pub problems: Vec<Problem>,
    /// The signature's state: `None` when there is none.
    pub signature: Option<SignatureState>,
}

/// Whether and how the signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureState {
    /// Verified with the public key given; its trusted comment.
    Verified { trusted_comment: String },
    /// A signature is there but no public key was given to check it with.
    Unchecked,
}

/// Checks `dir` against its manifest, and the signature against `public_key` when given.
pub fn verify(dir: &Path, public_key: Option<&Path>) -> Result<Verification, EvidenceError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(EvidenceError::NoManifest {
            dir: dir.to_path_buf(),
        });
    }
    let bytes = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?;
    let mut problems = Vec::new();
    let mut files_ok = 0;
    match serde_json::from_slice::<ManifestFiles>(&bytes) {
        Err(e) => problems.push(Problem::BadManifest(format!("not a tattle manifest ({e})"))),
        Ok(m) if m.format_version != MANIFEST_FORMAT_VERSION => {
            problems.push(Problem::BadManifest(format!(
                "format_version {} (this tattle reads {MANIFEST_FORMAT_VERSION})",
                m.format_version
            )))
        }
        Ok(m) => match hash_files(dir) {
            Ok(present) => compare(&m.files, &present, &mut problems, &mut files_ok),
            Err(EvidenceError::NotRegular { path }) => problems.push(Problem::NotRegular { path }),
            Err(e) => return Err(e),
        },
    }
    let sig_path = dir.join(SIGNATURE_FILE);
    let signature = match (sig_path.is_file(), public_key) {
        (false, None) => None,
        (false, Some(_)) => {
            problems.push(Problem::BadSignature(
                "missing: the run was not signed (tattle run --sign KEY)".into(),
            ));
            None
        }
        (true, None) => Some(SignatureState::Unchecked),
        (true, Some(pk_path)) => match check_signature(&sig_path, &bytes, pk_path)? {
            Ok(trusted_comment) => Some(SignatureState::Verified { trusted_comment }),
            Err(why) => {
                problems.push(Problem::BadSignature(why));
                None
            }
        },
    };
    Ok(Verification {
        files_ok,
        problems,
        signature,
    })
}

/// Compares the manifest's list with the files present. Paths from the manifest are shown
/// sanitised: it may have been tampered with.
fn compare(
    listed: &[FileEntry],
    present: &[FileEntry],
    problems: &mut Vec<Problem>,
    files_ok: &mut usize,
) {
    for entry in listed {
        let path = tattle_analysis::sanitize(&entry.path);
        if !safe_relative(&entry.path) {
            problems.push(Problem::BadManifest(format!(
                "lists `{path}`, which is not a path inside the run directory"
            )));
            continue;
        }
        match present.iter().find(|p| p.path == entry.path) {
            None => problems.push(Problem::Missing { path }),
            Some(p) if p.sha256 != entry.sha256 || p.bytes != entry.bytes => {
                problems.push(Problem::Changed { path })
            }
            Some(_) => *files_ok += 1,
        }
    }
    for p in present {
        if !listed.iter().any(|e| e.path == p.path) {
            problems.push(Problem::Unlisted {
                path: tattle_analysis::sanitize(&p.path),
            });
        }
    }
}

/// The signature's trusted comment, or why it does not verify; an unreadable public key is an
/// error (the user's mistake, not tampering).
fn check_signature(
    sig_path: &Path,
    manifest: &[u8],
    pk_path: &Path,
) -> Result<Result<String, String>, EvidenceError> {
    let pk_text = read_bounded(pk_path, 64 * 1024)?;
    let pk = std::str::from_utf8(&pk_text)
        .ok()
        .and_then(|t| minisign::PublicKeyBox::from_string(t).ok())
        .and_then(|b| b.into_public_key().ok())
        .ok_or_else(|| EvidenceError::Key {
            path: pk_path.to_path_buf(),
            what: "not a minisign public key".into(),
            help: "give the `.pub` file `minisign -G` wrote beside the secret key".into(),
        })?;
    let sig_text = match read_bounded(sig_path, 64 * 1024).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        _ => return Ok(Err("not a minisign signature".into())),
    };
    let Ok(sig) = minisign::SignatureBox::from_string(&sig_text) else {
        return Ok(Err("not a minisign signature".into()));
    };
    let verified = minisign::verify(
        &pk,
        &sig,
        std::io::Cursor::new(manifest),
        true,
        false,
        false,
    );
    Ok(match verified {
        Ok(()) => Ok(tattle_analysis::sanitize(
            &sig.trusted_comment().unwrap_or_default(),
        )),
        Err(e) => Err(format!("does not verify with {}: {e}", pk_path.display())),
    })
}

/// A manifest's path: relative, with no `..`, root or prefix.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_paths_inside_the_directory_are_accepted() {
        assert!(safe_relative("capture.pcap"));
        assert!(safe_relative("sub/x.json"));
        assert!(!safe_relative("../etc/passwd"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn tampering_is_named_by_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.json"), "{}").unwrap();
        std::fs::write(dir.path().join("capture.pcap"), [1u8, 2, 3]).unwrap();
        let files = hash_files(dir.path()).unwrap();
        let text = serde_json::json!({"format_version": 1, "files": files}).to_string();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert_eq!((v.files_ok, v.problems.len()), (2, 0), "{v:?}");

        std::fs::write(dir.path().join("capture.pcap"), [1u8, 2, 4]).unwrap();
        std::fs::remove_file(dir.path().join("run.json")).unwrap();
        std::fs::write(dir.path().join("extra.txt"), "x").unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert_eq!(
            v.problems,
            vec![
                Problem::Changed {
                    path: "capture.pcap".into()
                },
                Problem::Missing {
                    path: "run.json".into()
                },
                Problem::Unlisted {
                    path: "extra.txt".into()
                },
            ]
        );

        // A symlink (to a device that never ends) is reported, never read.
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert_eq!(
            v.problems,
            vec![Problem::NotRegular {
                path: "zero".into()
            }]
        );
        std::fs::remove_file(dir.path().join("zero")).unwrap();

        std::fs::write(dir.path().join(MANIFEST_FILE), "{\"files\": 3").unwrap();
        let v = verify(dir.path(), None).unwrap();
        assert!(matches!(v.problems[..], [Problem::BadManifest(_)]), "{v:?}");
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify(other.path(), None),
            Err(EvidenceError::NoManifest { .. })
        ));
    }
}

#[cfg(test)]
mod minisign_keys {
    use super::*;

    /// Keys made by Debian's `minisign -G`: without a password, and with one.
    #[test]
    fn keys_made_by_minisign_open() {
        let dir = tempfile::tempdir().unwrap();
        let (public, secret) = (dir.path().join("k.pub"), dir.path().join("k.key"));
        let status = std::process::Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret)
            .output()
            .expect("minisign (apt-get install minisign)");
        assert!(status.status.success());
        let key = SigningKey::load(&secret, None);
        assert!(key.is_ok(), "{key:?}");
        let err = SigningKey::load(&public, None).unwrap_err().to_string();
        assert!(err.contains("not a minisign secret key"), "{err}");
    }
}
