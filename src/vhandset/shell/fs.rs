//! The handset's in-memory file system: what `adb push`/`pull`/`ls` (sync) and the shell's `ls`, `cat`,
//! `rm`, `>` redirections see. Bounded in total size; paths are normalised so `..` cannot escape.
//! Symbolic links to files exist for what adbd's STAT v1 (lstat) sees of them; made by tests only.
//!
//! Must not touch: the host's file system, the sync wire format.

use std::collections::{BTreeMap, BTreeSet};

/// Default total size limit.
pub const DEFAULT_LIMIT: usize = 256 * 1024 * 1024;
/// Longest path accepted (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Most entries (files + directories).
const MAX_ENTRIES: usize = 100_000;

pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
/// Most symbolic links followed in one lookup (Linux: 40; ELOOP beyond).
const MAX_LINK_HOPS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    /// Permission bits (without the type).
    pub mode: u32,
    pub mtime: u64,
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Full mode including the type bits.
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
    pub is_dir: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("No such file or directory")]
    NotFound,
    #[error("Is a directory")]
    IsDir,
    #[error("Not a directory")]
    NotDir,
    #[error("No space left on device")]
    NoSpace,
    #[error("Invalid argument")]
    Invalid,
    #[error("Directory not empty")]
    NotEmpty,
}

impl FsError {
    /// The errno Android would report (for sync's STA2 error field).
    pub fn errno(self) -> u32 {
        match self {
            FsError::NotFound => 2,
            FsError::IsDir => 21,
            FsError::NotDir => 20,
            FsError::NoSpace => 28,
            FsError::Invalid => 22,
            FsError::NotEmpty => 39,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemFs {
    files: BTreeMap<String, File>,
    dirs: BTreeSet<String>,
    /// Symbolic links: the link's path → its target's (absolute, normalised). Followed by `stat`
    /// and `read`; `lstat` sees the link itself (what adbd's STAT v1 answers). Not listed by `list`.
    links: BTreeMap<String, String>,
    used: usize,
    limit: usize,
    boot_time: u64,
}

/// Normalises an absolute or `cwd`-relative path: no `.`/`..`/`//`, never above `/`.
pub fn normalize(path: &str, cwd: &str) -> Result<String, FsError> {
    if path.is_empty() || path.len() > MAX_PATH || path.contains('\0') {
        return Err(FsError::Invalid);
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

impl MemFs {
    pub fn new(limit: usize, now: u64) -> Self {
        let mut fs = MemFs {
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            links: BTreeMap::new(),
            used: 0,
            limit,
            boot_time: now,
        };
        for d in [
            "/sdcard/Download",
            "/sdcard/DCIM",
            "/storage/emulated/0",
            "/data/local/tmp",
            "/system/bin",
            "/system/app",
            "/vendor",
            "/proc",
            "/dev",
            "/etc",
            "/cache",
        ] {
            let _ = fs.mkdir_all(d);
        }
        fs
    }

    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes still free under the limit.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.dirs.contains(path) || path == "/"
    }

    /// Makes `path` a symbolic link to `target` (absolute), as `ln -s TARGET PATH`.
    pub fn symlink(&mut self, target: &str, path: &str) -> Result<(), FsError> {
        let target = normalize(target, "/")?;
        if path == "/" || self.files.contains_key(path) || self.is_dir(path) {
            return Err(FsError::Invalid);
        }
        if self.files.len() + self.dirs.len() + self.links.len() >= MAX_ENTRIES {
            return Err(FsError::NoSpace);
        }
        self.links.insert(path.to_string(), target);
        Ok(())
    }

    /// `path` with its symbolic links followed (the last component only: links are files here).
    fn resolve<'a>(&'a self, mut path: &'a str) -> Result<&'a str, FsError> {
        for _ in 0..MAX_LINK_HOPS {
            match self.links.get(path) {
                Some(target) => path = target,
                None => return Ok(path),
            }
        }
        Err(FsError::Invalid)
    }

    /// `stat` of the link itself when `path` is one (mode S_IFLNK|0777, size the target's length).
    pub fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        match self.links.get(path) {
            Some(target) => Ok(Stat {
                mode: S_IFLNK | 0o777,
                size: target.len() as u64,
                mtime: self.boot_time,
                is_dir: false,
            }),
            None => self.stat(path),
        }
    }

    pub fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let path = self.resolve(path)?;
        if let Some(f) = self.files.get(path) {
            return Ok(Stat {
                mode: S_IFREG | f.mode,
                size: f.data.len() as u64,
                mtime: f.mtime,
                is_dir: false,
            });
        }
        if self.is_dir(path) {
            return Ok(Stat {
                mode: S_IFDIR | 0o771,
                size: 4096,
                mtime: self.boot_time,
                is_dir: true,
            });
        }
        Err(FsError::NotFound)
    }

    pub fn read(&self, path: &str) -> Result<&[u8], FsError> {
        let path = self.resolve(path)?;
        match self.files.get(path) {
            Some(f) => Ok(&f.data),
            None if self.is_dir(path) => Err(FsError::IsDir),
            None => Err(FsError::NotFound),
        }
    }

    /// Creates a directory and its parents.
    pub fn mkdir_all(&mut self, path: &str) -> Result<(), FsError> {
        let mut cur = Some(path);
        let mut todo = Vec::new();
        while let Some(p) = cur {
            if self.is_dir(p) {
                break;
            }
            if self.files.contains_key(p) {
                return Err(FsError::NotDir);
            }
            todo.push(p.to_string());
            cur = parent(p);
        }
        if self.files.len() + self.dirs.len() + todo.len() > MAX_ENTRIES {
            return Err(FsError::NoSpace);
        }
        self.dirs.extend(todo);
        Ok(())
    }

    /// Writes (replaces) a file, creating its parent directories as adbd does for push.
    pub fn write(
        &mut self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
        mtime: u64,
    ) -> Result<(), FsError> {
        if path == "/" || self.is_dir(path) {
            return Err(FsError::IsDir);
        }
        let old = self.files.get(path).map_or(0, |f| f.data.len());
        if self.used - old + data.len() > self.limit {
            return Err(FsError::NoSpace);
        }
        if let Some(p) = parent(path) {
            self.mkdir_all(p)?;
        }
        if !self.files.contains_key(path) && self.files.len() + self.dirs.len() >= MAX_ENTRIES {
            return Err(FsError::NoSpace);
        }
        self.used = self.used - old + data.len();
        self.files.insert(
            path.to_string(),
            File {
                data,
                mode: mode & 0o7777,
                mtime,
            },
        );
        Ok(())
    }

    /// Appends to a file (creating it). In place: a key log drained line by line into a growing
    /// file costs amortised O(bytes appended), not a copy of the file each time. What `stat`,
    /// `ls -l` and a pull show is the same as a rewrite's: the bytes, their length, the new mtime.
    pub fn append(&mut self, path: &str, data: &[u8], mtime: u64) -> Result<(), FsError> {
        if self.used + data.len() > self.limit {
            return Err(FsError::NoSpace);
        }
        match self.files.get_mut(path) {
            Some(file) => {
                file.data.extend_from_slice(data);
                file.mtime = mtime;
                self.used += data.len();
                Ok(())
            }
            None => self.write(path, data.to_vec(), 0o660, mtime),
        }
    }

    pub fn remove(&mut self, path: &str) -> Result<(), FsError> {
        if self.links.remove(path).is_some() {
            return Ok(());
        }
        match self.files.remove(path) {
            Some(f) => {
                self.used -= f.data.len();
                Ok(())
            }
            None if self.is_dir(path) => Err(FsError::IsDir),
            None => Err(FsError::NotFound),
        }
    }

    /// Removes a directory and everything below it.
    pub fn remove_tree(&mut self, path: &str) -> Result<(), FsError> {
        if !self.is_dir(path) || path == "/" {
            return self.remove(path);
        }
        let prefix = format!("{path}/");
        let files: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for f in files {
            let _ = self.remove(&f);
        }
        self.dirs.retain(|d| d != path && !d.starts_with(&prefix));
        Ok(())
    }

    /// Entries directly inside `dir`, sorted by name.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, Stat)>, FsError> {
        if !self.is_dir(dir) {
            return Err(if self.files.contains_key(dir) {
                FsError::NotDir
            } else {
                FsError::NotFound
            });
        }
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let mut out = BTreeMap::new();
        let direct = |k: &str| {
            k.starts_with(&prefix) && k.len() > prefix.len() && !k[prefix.len()..].contains('/')
        };
        for k in self.files.keys().filter(|k| direct(k)) {
            if let Ok(st) = self.stat(k) {
                out.insert(k[prefix.len()..].to_string(), st);
            }
        }
        for k in self.dirs.iter().filter(|k| direct(k)) {
            if let Ok(st) = self.stat(k) {
                out.insert(k[prefix.len()..].to_string(), st);
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/a/./b//c/..", "/").unwrap(), "/a/b");
        assert_eq!(normalize("../../x", "/sdcard").unwrap(), "/x");
        assert_eq!(
            normalize("x", "/data/local/tmp").unwrap(),
            "/data/local/tmp/x"
        );
        assert!(normalize("", "/").is_err());
        assert!(normalize("a\0b", "/").is_err());
    }

    #[test]
    fn write_read_list_remove_and_quota() {
        let mut fs = MemFs::new(10, 0);
        fs.write("/sdcard/new/dir/f", b"12345".to_vec(), 0o644, 1)
            .unwrap();
        assert!(fs.is_dir("/sdcard/new/dir"));
        assert_eq!(fs.read("/sdcard/new/dir/f").unwrap(), b"12345");
        assert_eq!(
            fs.write("/sdcard/g", vec![0; 6], 0o644, 1),
            Err(FsError::NoSpace)
        );
        fs.write("/sdcard/new/dir/f", vec![0; 10], 0o644, 1)
            .unwrap();
        assert_eq!(fs.used(), 10);
        let names: Vec<String> = fs
            .list("/sdcard")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["DCIM", "Download", "new"]);
        assert_eq!(fs.read("/sdcard"), Err(FsError::IsDir));
        assert_eq!(fs.stat("/nope"), Err(FsError::NotFound));
        assert_eq!(
            fs.write("/sdcard/new/dir/f/x", vec![], 0o644, 1),
            Err(FsError::NotDir)
        );
        fs.remove("/sdcard/new/dir/f").unwrap();
        assert_eq!(fs.used(), 0);
        fs.remove_tree("/sdcard/new").unwrap();
        assert!(!fs.is_dir("/sdcard/new/dir"));
    }

    #[test]
    fn appends_grow_the_file_in_place() {
        let mut fs = MemFs::new(1 << 20, 0);
        let line = b"CLIENT_RANDOM 00 11\n";
        let appends = 10_000;
        let mut moves = 0;
        let mut at = std::ptr::null();
        for i in 0..appends {
            fs.append("/data/local/tmp/sslkeys.log", line, i).unwrap();
            let now = fs.read("/data/local/tmp/sslkeys.log").unwrap().as_ptr();
            moves += usize::from(now != at);
            at = now;
        }
        // A copy per append would move the file's bytes every time; growth by doubling, a few dozen.
        assert!(
            moves <= 64,
            "{moves} moves for {appends} appends: quadratic"
        );
        let size = line.len() * appends as usize;
        assert_eq!(
            fs.stat("/data/local/tmp/sslkeys.log").unwrap(),
            Stat {
                mode: S_IFREG | 0o660,
                size: size as u64,
                mtime: appends - 1,
                is_dir: false
            }
        );
        assert_eq!(fs.used(), size);
        assert!(
            fs.read("/data/local/tmp/sslkeys.log")
                .unwrap()
                .chunks(line.len())
                .all(|c| c == line)
        );
        // The quota still holds, and a refused append changes nothing.
        let mut small = MemFs::new(8, 0);
        small.append("/sdcard/f", b"12345", 1).unwrap();
        assert_eq!(small.append("/sdcard/f", b"6789", 2), Err(FsError::NoSpace));
        assert_eq!(small.stat("/sdcard/f").unwrap().size, 5);
        assert_eq!(small.append("/sdcard", b"x", 2), Err(FsError::IsDir));
    }
}
