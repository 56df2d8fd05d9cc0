//! The `device` source: tcpdump on the device, as the device allows it.
//!
//! Owns which tcpdump runs (the device's own on its PATH, or a static binary the user supplies with
//! `--tcpdump-binary`, checked against the device's ABI from its ELF header, pushed to
//! `/data/local/tmp/tcpdump` with mode 0755), how it runs as root (as it is when adbd is root —
//! `adb root` on an emulator or a userdebug build —, else through the `su` form
//! `device::access::probe_root` finds: `su -c 'CMD'` of SuperSU/Magisk, `su 0 CMD` of AOSP's
//! userdebug su), and what the user is told when it cannot (what is missing, and the fix).
//!
//! The shell is tried first, as everywhere in tattle: root is probed only when tcpdump sends no
//! capture as the shell user, so a root manager is not asked when nothing needs it.
//!
//! Must not touch: the streaming of the bytes (`capture::start_on_device`), root detection itself
//! (`device::access`), the run's order (`runner`).

use std::path::{Path, PathBuf};

use crate::adb::shell_quote;
use crate::device::access::{self, RootAccess, RootForm};
use crate::device::{Device, DeviceIdentity};

use super::{CaptureError, RunningCapture, Tee, start_on_device};

/// Where `--tcpdump-binary` is pushed: the one directory the shell user may write and execute.
pub const PUSHED_PATH: &str = "/data/local/tmp/tcpdump";
/// A static tcpdump is 1–5 MB; anything far past that is not one.
const MAX_BINARY_BYTES: u64 = 64 * 1024 * 1024;
/// tcpdump's arguments: every interface, packet-buffered, whole packets, pcap on stdout.
const ARGS: &str = "-i any -U -s 0 -w -";

/// How the run's tcpdump is started, decided before the capture and refined by its first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpdumpPlan {
    /// `tcpdump` (the device's, on its PATH) or [`PUSHED_PATH`].
    pub program: String,
    /// The user's binary was pushed.
    pub pushed: bool,
    /// The root form tcpdump runs through, once known (`AdbdRoot`: as it is).
    pub root: Option<RootForm>,
    /// Root was probed (the shell's tcpdump sent nothing); `root_note` says what was found.
    pub root_probed: bool,
    pub root_note: Option<String>,
    /// `ro.debuggable=1`: `adb root` is possible.
    pub debuggable: bool,
}

impl TcpdumpPlan {
    /// In words, for run.json and the terminal: `tcpdump on the device (PATH), as the shell user`.
    pub fn describe(&self) -> String {
        let which = if self.pushed {
            format!("{PUSHED_PATH}, pushed from --tcpdump-binary")
        } else {
            "the device's own".to_string()
        };
        let how = match self.root {
            None => "as the shell user".to_string(),
            Some(RootForm::AdbdRoot) => "as root (adbd runs as root)".to_string(),
            Some(form) => format!("as root through `{}`", form.label()),
        };
        format!("tcpdump on the device ({which}), {how}")
    }

    /// After a reboot adbd is no longer root (`adb root` does not last), and a su grant may have
    /// been for the old boot: decide again.
    pub(crate) fn after_reboot(&mut self) {
        if self.root == Some(RootForm::AdbdRoot) {
            self.root = None;
        }
        self.root_probed = false;
    }
}

/// The capture command for `program` run as `root`: stderr (tcpdump's `listening on` banner) goes
/// to /dev/null outside the su, since `exec:` merges it into the pcap stream on some builds.
pub fn command(program: &str, root: Option<RootForm>) -> String {
    let cmd = format!("{program} {ARGS}");
    match root {
        None | Some(RootForm::AdbdRoot) => format!("{cmd} 2>/dev/null"),
        Some(form) => format!("{} 2>/dev/null", form.wrap(&cmd)),
    }
}

/// Checks what the capture needs before the run: the tcpdump to run (pushing `binary` when given)
/// and whether adbd is already root. Nothing is captured yet.
pub(crate) async fn prepare(
    device: &Device,
    identity: &DeviceIdentity,
    binary: Option<&Path>,
) -> Result<TcpdumpPlan, CaptureError> {
    if identity.sdk != 0 && identity.sdk < 21 {
        return Err(CaptureError::NoExec { sdk: identity.sdk });
    }
    let debuggable = prop(device, "ro.debuggable").await? == "1";
    let (program, pushed) = match binary {
        Some(path) => {
            push_binary(device, path).await?;
            (PUSHED_PATH.to_string(), true)
        }
        None => {
            if !access::has_program(device.adb(), "tcpdump").await? {
                let abi = prop(device, "ro.product.cpu.abi").await?;
                return Err(CaptureError::NoTcpdump {
                    abi: tattle_analysis::sanitize(&abi),
                });
            }
            ("tcpdump".to_string(), false)
        }
    };
    let id = device.adb().shell("id").await?;
    let root = crate::device::parse::id_is_root(&id.stdout_text()).then_some(RootForm::AdbdRoot);
    Ok(TcpdumpPlan {
        program,
        pushed,
        root,
        root_probed: false,
        root_note: None,
        debuggable,
    })
}

/// Starts tcpdump as `plan` says; when the shell's tcpdump sends nothing, finds root and tries
/// through it, and remembers the form that worked for the restarts after a reboot.
pub(crate) async fn start(
    device: &Device,
    plan: &mut TcpdumpPlan,
    path: &Path,
    tee: Tee,
) -> Result<RunningCapture, CaptureError> {
    let debuggable = plan.debuggable;
    start_with(
        plan,
        &mut OnDevice {
            device,
            path,
            tee,
            debuggable,
        },
    )
    .await
}

/// What a start does on a device, apart from the order of attempts (`start_with`).
trait Attempts {
    type Running;
    /// Runs a capture command; `Ok` once it sent its pcap header.
    fn start(
        &mut self,
        command: String,
    ) -> impl std::future::Future<Output = Result<Self::Running, CaptureError>> + Send;
    /// Finds root (`device::access::probe_root`).
    fn probe_root(
        &mut self,
    ) -> impl std::future::Future<Output = Result<RootAccess, crate::device::DeviceError>> + Send;
}

struct OnDevice<'a> {
    device: &'a Device,
    path: &'a Path,
    tee: Tee,
    debuggable: bool,
}

impl Attempts for OnDevice<'_> {
    type Running = RunningCapture;

    fn start(
        &mut self,
        command: String,
    ) -> impl std::future::Future<Output = Result<RunningCapture, CaptureError>> + Send {
        let (adb, path, tee) = (self.device.adb(), self.path, self.tee.clone());
        async move {
            let started = start_on_device(adb, &command, path, tee).await;
            if started.is_err() {
                // At most a partial header: the next try writes the file anew.
                let _ = tokio::fs::remove_file(path).await;
            }
            started
        }
    }

    fn probe_root(
        &mut self,
    ) -> impl std::future::Future<Output = Result<RootAccess, crate::device::DeviceError>> + Send
    {
        access::probe_root(self.device.adb(), self.debuggable)
    }
}

/// The order of attempts: the command as `plan` says; when that sends no header and root was not
/// tried yet, root is probed (once) and the command run through the form found.
async fn start_with<A: Attempts>(
    plan: &mut TcpdumpPlan,
    device: &mut A,
) -> Result<A::Running, CaptureError> {
    let shell_error = match device.start(command(&plan.program, plan.root)).await {
        Ok(running) => return Ok(running),
        Err(e) if !e.may_need_root() || plan.root.is_some() || plan.root_probed => return Err(e),
        Err(e) => e,
    };
    let root = device.probe_root().await?;
    plan.root_probed = true;
    plan.root_note = Some(root.note.clone());
    let form = match root.form {
        // adbd is root and tcpdump still sends nothing: root is not what it lacks.
        Some(RootForm::AdbdRoot) => return Err(shell_error),
        Some(form) => form,
        None => {
            return Err(CaptureError::NoRoot {
                note: root.note.clone(),
                fix: no_root_fix(&root),
            });
        }
    };
    match device.start(command(&plan.program, Some(form))).await {
        Ok(running) => {
            plan.root = Some(form);
            Ok(running)
        }
        Err(e) => Err(CaptureError::RootCaptureFailed {
            form: form.label(),
            detail: e.to_string(),
        }),
    }
}

/// What to try when tcpdump needs root and none was found.
pub fn no_root_fix(root: &RootAccess) -> String {
    const ROOTLESS: &str = "or use a rootless source: a capture taken on the network the phone \
        uses (tcpdump on the access point, Wireshark on a hotspot) with `--capture file:PATH` or \
        `--capture file:-` (docs/capture.md)";
    if root.adb_root_possible {
        format!(
            "this build is debuggable: run `adb root` (adbd restarts as root; a reboot undoes \
             it), then run tattle again; {ROOTLESS}"
        )
    } else if root.note.contains("did not give uid 0") || root.note.contains("did not answer") {
        format!(
            "`su` is there but did not give root: grant root to the shell in the root manager \
             (Magisk: Superuser → Shell; SuperSU: allow `com.android.shell`), then run tattle \
             again; {ROOTLESS}"
        )
    } else {
        format!(
            "a user build without `su` cannot capture on the device: root it (Magisk), {ROOTLESS}"
        )
    }
}

async fn prop(device: &Device, key: &str) -> Result<String, CaptureError> {
    let out = device.adb().shell(&format!("getprop {key}")).await?;
    Ok(out.stdout_text().trim().to_string())
}

/// Reads `path`, checks it is an ELF executable for one of the device's ABIs, pushes it to
/// [`PUSHED_PATH`] with mode 0755 and makes sure it is executable there.
async fn push_binary(device: &Device, path: &Path) -> Result<(), CaptureError> {
    let read_err = |source: std::io::Error| CaptureError::Binary {
        path: path.to_path_buf(),
        why: source.to_string(),
    };
    let meta = tokio::fs::metadata(path).await.map_err(read_err)?;
    if !meta.is_file() || meta.len() > MAX_BINARY_BYTES {
        return Err(CaptureError::Binary {
            path: path.to_path_buf(),
            why: format!(
                "not a file of at most {} MiB (a static tcpdump is a few MB)",
                MAX_BINARY_BYTES >> 20
            ),
        });
    }
    let bytes = tokio::fs::read(path).await.map_err(read_err)?;
    let elf = parse_elf(&bytes).map_err(|why| CaptureError::Binary {
        path: path.to_path_buf(),
        why,
    })?;
    let mut abis = vec![prop(device, "ro.product.cpu.abi").await?];
    // 5.0+ lists every ABI the device runs (a 64-bit phone usually runs 32-bit ARM too); 4.4 has
    // at most a second one.
    for key in ["ro.product.cpu.abilist", "ro.product.cpu.abi2"] {
        abis.extend(
            prop(device, key)
                .await?
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string),
        );
    }
    abis.retain(|a| !a.is_empty());
    check_abi(&elf, &abis).map_err(|why| CaptureError::AbiMismatch {
        path: path.to_path_buf(),
        why,
    })?;
    if let Some(interp) = &elf.interpreter
        && !interp.starts_with("/system/bin/linker")
    {
        return Err(CaptureError::Binary {
            path: path.to_path_buf(),
            why: format!(
                "it is linked dynamically against {}, which Android does not have: build \
                 tcpdump statically (or against bionic)",
                tattle_analysis::sanitize(interp)
            ),
        });
    }
    let adb = device.adb();
    adb.push(&bytes, PUSHED_PATH, 0o755).await?;
    // adbd applies SEND's mode (file_sync_service.cpp fchmod); where it did not, chmod.
    if !executable(device).await? {
        let out = adb
            .shell(&format!("chmod 755 {}", shell_quote(PUSHED_PATH)))
            .await?;
        if !executable(device).await? {
            return Err(CaptureError::Binary {
                path: path.to_path_buf(),
                why: format!(
                    "pushed to {PUSHED_PATH}, but it is not executable there and `chmod 755` \
                     said: {}",
                    tattle_analysis::sanitize(
                        &format!("{}{}", out.stdout_text(), out.stderr_text())
                            .trim()
                            .chars()
                            .take(160)
                            .collect::<String>()
                    )
                ),
            });
        }
    }
    tracing::debug!(path = %path.display(), "tcpdump binary pushed to {PUSHED_PATH}");
    Ok(())
}

async fn executable(device: &Device) -> Result<bool, CaptureError> {
    Ok(device
        .adb()
        .stat(PUSHED_PATH)
        .await?
        .is_some_and(|s| s.is_file() && s.mode & 0o111 == 0o111))
}

/// What the ELF header of a binary says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// ELFCLASS64.
    pub class64: bool,
    /// `e_machine` (EM_AARCH64 183, EM_ARM 40, EM_386 3, EM_X86_64 62, EM_MIPS 8, EM_RISCV 243).
    pub machine: u16,
    /// `e_type` is ET_EXEC or ET_DYN (a PIE).
    pub executable: bool,
    /// PT_INTERP: the dynamic linker it needs; `None` for a static binary.
    pub interpreter: Option<String>,
}

/// Parses the ELF header and program headers of `bytes` (the System V gABI layout): every offset
/// checked, nothing trusted.
pub fn parse_elf(bytes: &[u8]) -> Result<Elf, String> {
    if bytes.len() < 52 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF binary (no \\x7fELF magic): give tcpdump built for Android".into());
    }
    let class64 = match bytes[4] {
        1 => false,
        2 => true,
        c => return Err(format!("unknown ELF class {c}")),
    };
    if bytes[5] != 1 {
        return Err("a big-endian ELF: every Android ABI is little-endian".into());
    }
    let field = |o: usize, n: usize| bytes.get(o..o.checked_add(n)?);
    let u16_at =
        |o: usize| -> Option<u16> { Some(u16::from_le_bytes(field(o, 2)?.try_into().ok()?)) };
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(field(o, 4)?.try_into().ok()?)) };
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_le_bytes(field(o, 8)?.try_into().ok()?)) };
    let truncated = || "the ELF header is truncated".to_string();
    let e_type = u16_at(16).ok_or_else(truncated)?;
    let machine = u16_at(18).ok_or_else(truncated)?;
    let (phoff, phentsize, phnum) = if class64 {
        (
            u64_at(32).ok_or_else(truncated)?,
            u16_at(54).ok_or_else(truncated)?,
            u16_at(56).ok_or_else(truncated)?,
        )
    } else {
        (
            u64::from(u32_at(28).ok_or_else(truncated)?),
            u16_at(42).ok_or_else(truncated)?,
            u16_at(44).ok_or_else(truncated)?,
        )
    };
    let mut interpreter = None;
    for i in 0..u64::from(phnum) {
        let Some(at) = phoff
            .checked_add(i.saturating_mul(u64::from(phentsize)))
            .and_then(|a| usize::try_from(a).ok())
        else {
            break;
        };
        // PT_INTERP = 3; p_offset and p_filesz per class.
        if u32_at(at) != Some(3) {
            continue;
        }
        let (offset, size) = if class64 {
            (u64_at(at.saturating_add(8)), u64_at(at.saturating_add(32)))
        } else {
            (
                u32_at(at.saturating_add(4)).map(u64::from),
                u32_at(at.saturating_add(16)).map(u64::from),
            )
        };
        let text = offset.zip(size).and_then(|(o, s)| {
            let o = usize::try_from(o).ok()?;
            let s = usize::try_from(s).ok()?.min(4096);
            bytes.get(o..o.checked_add(s)?)
        });
        interpreter = Some(match text {
            Some(t) => {
                String::from_utf8_lossy(t.split(|b| *b == 0).next().unwrap_or(t)).into_owned()
            }
            None => "an interpreter outside the file".to_string(),
        });
    }
    Ok(Elf {
        class64,
        machine,
        executable: matches!(e_type, 2 | 3),
        interpreter,
    })
}

/// The Android ABI an ELF machine and class run on.
pub fn abi_of(machine: u16, class64: bool) -> Option<&'static str> {
    Some(match (machine, class64) {
        (183, true) => "arm64-v8a",
        (40, false) => "armeabi-v7a",
        (62, true) => "x86_64",
        (3, false) => "x86",
        (8, false) => "mips",
        (8, true) => "mips64",
        (243, true) => "riscv64",
        _ => return None,
    })
}

/// Whether the device runs `elf`: its ABI is one of the device's (`armeabi` counts as
/// `armeabi-v7a`'s family). `Err` says both sides.
pub fn check_abi(elf: &Elf, device_abis: &[String]) -> Result<(), String> {
    let device = if device_abis.is_empty() {
        "unknown (ro.product.cpu.abi is empty)".to_string()
    } else {
        let mut unique: Vec<&str> = Vec::new();
        for a in device_abis {
            if !unique.contains(&a.as_str()) {
                unique.push(a);
            }
        }
        tattle_analysis::sanitize(&unique.join(", "))
    };
    let Some(abi) = abi_of(elf.machine, elf.class64) else {
        return Err(format!(
            "the binary is for ELF machine {} ({}-bit), which no Android ABI uses; the device \
             runs {device}",
            elf.machine,
            if elf.class64 { 64 } else { 32 }
        ));
    };
    if !elf.executable {
        return Err("the ELF file is not an executable (e_type is not EXEC or DYN)".into());
    }
    let matches = device_abis
        .iter()
        .any(|a| a == abi || (abi == "armeabi-v7a" && a == "armeabi"));
    if matches {
        Ok(())
    } else {
        Err(format!(
            "the binary is built for {abi}, the device runs {device}: give a tcpdump built for \
             {}",
            device_abis.first().map_or("its ABI", String::as_str)
        ))
    }
}

/// Where a binary was given, for messages.
pub fn shown(path: &Path) -> PathBuf {
    PathBuf::from(tattle_analysis::sanitize(&path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF: header, one program header (PT_INTERP when `interp` is set), the interp text.
    pub(crate) fn elf(class64: bool, machine: u16, interp: Option<&str>) -> Vec<u8> {
        let (ehsize, phentsize) = if class64 { (64, 56) } else { (52, 32) };
        let mut b = vec![0u8; ehsize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = if class64 { 2 } else { 1 };
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN (PIE)
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        let phoff = ehsize as u64;
        let phnum: u16 = u16::from(interp.is_some());
        if class64 {
            b[32..40].copy_from_slice(&phoff.to_le_bytes());
            b[54..56].copy_from_slice(&(phentsize as u16).to_le_bytes());
            b[56..58].copy_from_slice(&phnum.to_le_bytes());
        } else {
            b[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
            b[42..44].copy_from_slice(&(phentsize as u16).to_le_bytes());
            b[44..46].copy_from_slice(&phnum.to_le_bytes());
        }
        if let Some(interp) = interp {
            let text_at = (ehsize + phentsize) as u64;
            let mut ph = vec![0u8; phentsize];
            ph[..4].copy_from_slice(&3u32.to_le_bytes());
            let len = interp.len() as u64 + 1;
            if class64 {
                ph[8..16].copy_from_slice(&text_at.to_le_bytes());
                ph[32..40].copy_from_slice(&len.to_le_bytes());
            } else {
                ph[4..8].copy_from_slice(&(text_at as u32).to_le_bytes());
                ph[16..20].copy_from_slice(&(len as u32).to_le_bytes());
            }
            b.extend(ph);
            b.extend(interp.as_bytes());
            b.push(0);
        }
        b
    }

    fn abis(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn elf_headers_give_machine_class_and_interpreter() {
        let e = parse_elf(&elf(true, 183, None)).unwrap();
        assert_eq!((e.class64, e.machine, e.executable), (true, 183, true));
        assert_eq!(e.interpreter, None);
        let e = parse_elf(&elf(false, 40, Some("/system/bin/linker"))).unwrap();
        assert_eq!((e.class64, e.machine), (false, 40));
        assert_eq!(e.interpreter.as_deref(), Some("/system/bin/linker"));
        let e = parse_elf(&elf(true, 62, Some("/lib64/ld-linux-x86-64.so.2"))).unwrap();
        assert_eq!(
            e.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
    }

    #[test]
    fn bad_elf_input_is_refused_never_a_panic() {
        assert!(parse_elf(b"#!/bin/sh\necho tcpdump\n").is_err());
        assert!(parse_elf(b"\x7fELF").is_err());
        let mut big_endian = elf(true, 183, None);
        big_endian[5] = 2;
        assert!(parse_elf(&big_endian).unwrap_err().contains("big-endian"));
        // Program headers pointing anywhere: out of the file, overflowing, huge counts.
        let mut wild = elf(true, 183, Some("/system/bin/linker64"));
        wild[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse_elf(&wild).unwrap().interpreter, None);
        let mut wild = elf(false, 40, Some("/system/bin/linker"));
        let ph = 52;
        wild[ph + 4..ph + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse_elf(&wild).unwrap().interpreter.as_deref(),
            Some("an interpreter outside the file")
        );
        let mut many = elf(true, 183, None);
        many[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(parse_elf(&many).unwrap().interpreter, None);
    }

    #[test]
    fn abis_match_by_machine_and_class() {
        let arm64 = parse_elf(&elf(true, 183, None)).unwrap();
        let arm32 = parse_elf(&elf(false, 40, None)).unwrap();
        let x86_64 = parse_elf(&elf(true, 62, None)).unwrap();
        assert_eq!(check_abi(&arm64, &abis(&["arm64-v8a"])), Ok(()));
        // A 64-bit phone that lists 32-bit ARM runs a 32-bit tcpdump.
        assert_eq!(
            check_abi(
                &arm32,
                &abis(&["arm64-v8a", "arm64-v8a", "armeabi-v7a", "armeabi"])
            ),
            Ok(())
        );
        // 4.4: `ro.product.cpu.abi2` = armeabi.
        assert_eq!(
            check_abi(&arm32, &abis(&["armeabi-v7a", "armeabi"])),
            Ok(())
        );
        let e = check_abi(&x86_64, &abis(&["arm64-v8a", "armeabi-v7a"])).unwrap_err();
        assert_eq!(
            e,
            "the binary is built for x86_64, the device runs arm64-v8a, armeabi-v7a: give a \
             tcpdump built for arm64-v8a"
        );
        let e = check_abi(&arm64, &abis(&["x86"])).unwrap_err();
        assert!(
            e.contains("built for arm64-v8a, the device runs x86"),
            "{e}"
        );
        let sparc = parse_elf(&elf(true, 43, None)).unwrap();
        assert!(
            check_abi(&sparc, &abis(&["arm64-v8a"]))
                .unwrap_err()
                .contains("machine 43")
        );
        assert!(check_abi(&arm64, &[]).unwrap_err().contains("unknown"));
    }

    #[test]
    fn capture_commands_per_root_form() {
        assert_eq!(
            command("tcpdump", None),
            "tcpdump -i any -U -s 0 -w - 2>/dev/null"
        );
        assert_eq!(
            command(PUSHED_PATH, Some(RootForm::AdbdRoot)),
            "/data/local/tmp/tcpdump -i any -U -s 0 -w - 2>/dev/null"
        );
        assert_eq!(
            command("tcpdump", Some(RootForm::SuC)),
            "su -c 'tcpdump -i any -U -s 0 -w -' 2>/dev/null"
        );
        assert_eq!(
            command(PUSHED_PATH, Some(RootForm::Su0)),
            "su 0 /data/local/tmp/tcpdump -i any -U -s 0 -w - 2>/dev/null"
        );
    }

    #[test]
    fn no_root_says_which_method_to_try() {
        let access = |adb_root_possible, note: &str| RootAccess {
            form: None,
            adb_root_possible,
            note: note.into(),
        };
        let debuggable = no_root_fix(&access(true, "no `su` on the PATH"));
        assert!(
            debuggable.starts_with("this build is debuggable: run `adb root`"),
            "{debuggable}"
        );
        let denied = no_root_fix(&access(
            false,
            "`su -c` did not give uid 0; `su 0` did not give uid 0",
        ));
        assert!(denied.contains("grant root to the shell"), "{denied}");
        let user_build = no_root_fix(&access(false, "no `su` on the PATH"));
        assert!(user_build.contains("root it (Magisk)"), "{user_build}");
        for fix in [debuggable, denied, user_build] {
            assert!(fix.contains("rootless source"), "{fix}");
            assert!(
                !fix.to_lowercase().contains("pcapdroid"),
                "no promise of a source tattle lacks: {fix}"
            );
        }
    }

    fn plan(root: Option<RootForm>) -> TcpdumpPlan {
        TcpdumpPlan {
            program: "tcpdump".into(),
            pushed: false,
            root,
            root_probed: false,
            root_note: None,
            debuggable: false,
        }
    }

    /// A device whose tcpdump captures only for the commands in `works`; records what was run
    /// and how often root was probed.
    struct Scripted {
        works: Vec<String>,
        root: RootAccess,
        ran: Vec<String>,
        probes: usize,
        /// Every start fails the way a lost device does.
        gone: bool,
    }

    impl Attempts for Scripted {
        type Running = String;

        fn start(
            &mut self,
            command: String,
        ) -> impl std::future::Future<Output = Result<String, CaptureError>> + Send {
            self.ran.push(command.clone());
            let result = if self.gone {
                Err(CaptureError::Adb(crate::adb::AdbError::DeviceNotFound {
                    serial: "s".into(),
                }))
            } else if self.works.contains(&command) {
                Ok(command)
            } else {
                Err(CaptureError::Ended(0))
            };
            std::future::ready(result)
        }

        fn probe_root(
            &mut self,
        ) -> impl std::future::Future<Output = Result<RootAccess, crate::device::DeviceError>> + Send
        {
            self.probes += 1;
            std::future::ready(Ok(self.root.clone()))
        }
    }

    async fn attempt(
        plan: &mut TcpdumpPlan,
        works: &[&str],
        root: RootAccess,
    ) -> (Result<String, CaptureError>, Vec<String>, usize) {
        let mut device = Scripted {
            works: works.iter().map(|w| w.to_string()).collect(),
            root,
            ran: Vec::new(),
            probes: 0,
            gone: false,
        };
        let result = start_with(plan, &mut device).await;
        (result, device.ran, device.probes)
    }

    fn found(form: Option<RootForm>, note: &str) -> RootAccess {
        RootAccess {
            form,
            adb_root_possible: false,
            note: note.into(),
        }
    }

    #[tokio::test]
    async fn the_shell_first_then_the_root_form_found_which_is_kept() {
        let shell = "tcpdump -i any -U -s 0 -w - 2>/dev/null";
        let su0 = "su 0 tcpdump -i any -U -s 0 -w - 2>/dev/null";
        // The shell may capture (the virtual handset, a permissive build): root is never asked.
        let mut p = plan(None);
        let (r, ran, probes) = attempt(&mut p, &[shell], found(None, "")).await;
        assert_eq!((r.unwrap(), ran.len(), probes), (shell.to_string(), 1, 0));
        assert_eq!(p.root, None);
        // A userdebug phone: the shell's tcpdump sends nothing, `su 0` works and is remembered.
        let mut p = plan(None);
        let (r, ran, probes) = attempt(
            &mut p,
            &[su0],
            found(Some(RootForm::Su0), "`su 0` gives uid 0"),
        )
        .await;
        assert_eq!(r.unwrap(), su0);
        assert_eq!((ran, probes), (vec![shell.to_string(), su0.to_string()], 1));
        assert_eq!(p.root, Some(RootForm::Su0));
        assert_eq!(
            p.describe(),
            "tcpdump on the device (the device's own), as root through `su 0`"
        );
        // The next start (after a reboot) goes straight through it, without asking again.
        p.after_reboot();
        let (r, ran, probes) = attempt(&mut p, &[su0], found(None, "")).await;
        assert_eq!((r.unwrap(), ran.len(), probes), (su0.to_string(), 1, 0));
    }

    #[tokio::test]
    async fn without_root_the_error_names_what_is_missing_and_the_fix() {
        let mut p = plan(None);
        let (r, ran, probes) = attempt(&mut p, &[], found(None, "no `su` on the PATH")).await;
        let e = r.unwrap_err();
        assert!(matches!(e, CaptureError::NoRoot { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("tcpdump needs root to capture on this device, and tattle found none (no `su` on the PATH)\n  help: a user build without `su`"),
            "{text}"
        );
        assert!(text.contains("rootless source"), "{text}");
        assert_eq!((ran.len(), probes), (1, 1));
        // Root found, and tcpdump still sends nothing through it.
        let mut p = plan(None);
        let (r, _, _) = attempt(
            &mut p,
            &[],
            found(Some(RootForm::SuC), "`su -c` gives uid 0"),
        )
        .await;
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with("tcpdump sent no capture through `su -c` either"),
            "{text}"
        );
        assert_eq!(p.root, None);
        // adbd is root already: the failure is not about root, and is said as it is.
        let mut p = plan(Some(RootForm::AdbdRoot));
        let (r, ran, probes) = attempt(&mut p, &[], found(None, "")).await;
        assert!(matches!(r.unwrap_err(), CaptureError::Ended(0)));
        assert_eq!((ran.len(), probes), (1, 0));
        // An error that is no missing right (the device gone) is not retried through su.
        let mut gone = Scripted {
            works: Vec::new(),
            root: found(Some(RootForm::Su0), ""),
            ran: Vec::new(),
            probes: 0,
            gone: true,
        };
        let r = start_with(&mut plan(None), &mut gone).await;
        assert!(matches!(r, Err(CaptureError::Adb(_))));
        assert_eq!((gone.ran.len(), gone.probes), (1, 0));
    }

    #[test]
    fn plans_describe_themselves_and_forget_adb_root_on_reboot() {
        let mut plan = TcpdumpPlan {
            program: PUSHED_PATH.into(),
            pushed: true,
            root: Some(RootForm::AdbdRoot),
            root_probed: true,
            root_note: None,
            debuggable: true,
        };
        assert_eq!(
            plan.describe(),
            "tcpdump on the device (/data/local/tmp/tcpdump, pushed from --tcpdump-binary), as \
             root (adbd runs as root)"
        );
        plan.after_reboot();
        assert_eq!((plan.root, plan.root_probed), (None, false));
        plan.root = Some(RootForm::Su0);
        plan.pushed = false;
        plan.after_reboot();
        assert_eq!(plan.root, Some(RootForm::Su0));
        assert_eq!(
            plan.describe(),
            "tcpdump on the device (the device's own), as root through `su 0`"
        );
    }
}
