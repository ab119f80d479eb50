//! The token helper: the file where `login` stores its token and every later command finds
//! it, `~/.vault-token`, as Vault's built-in helper keeps it (so existing setups, and the
//! `vault` binary itself, share it).
//!
//! The file holds the token alone, no newline, readable by its owner only (mode 0600). It
//! is replaced atomically: a reader never sees half a token.
//!
//! Source: Vault `command/token/helper_internal.go`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file name in the home directory (Vault's).
pub const FILE_NAME: &str = ".vault-token";

/// The token helper file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHelper {
    path: PathBuf,
}

impl TokenHelper {
    /// The helper of the home directory `home`: `<home>/.vault-token`.
    pub fn in_home(home: &Path) -> TokenHelper {
        TokenHelper {
            path: home.join(FILE_NAME),
        }
    }

    /// The helper of the home directory named by `HOME` (`env` looks variables up), or
    /// `None` when `HOME` is unset or empty.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<TokenHelper> {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| TokenHelper::in_home(Path::new(&h)))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored token, trimmed; `None` when there is no file or it is blank.
    ///
    /// Errors: the file exists but cannot be read.
    pub fn get(&self) -> io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let token = text.trim();
                Ok((!token.is_empty()).then(|| token.to_string()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `token`, replacing any stored one: written to a fresh file of mode 0600 beside
    /// the target, then renamed over it.
    ///
    /// Errors: the directory is not writable, or the disk is full.
    pub fn store(&self, token: &str) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let tmp = dir.join(format!("{FILE_NAME}.tmp-{}", std::process::id()));
        let result = write_private(&tmp, token.trim().as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Creates `path` (which must not exist) readable and writable by its owner only, and
/// writes `bytes` to it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_reads_a_private_token() {
        let home = std::env::temp_dir().join(format!("authmount-helper-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let helper = TokenHelper::in_home(&home);
        assert_eq!(helper.get().unwrap(), None);
        helper.store("hvs.first").unwrap();
        helper.store("hvs.second\n").unwrap();
        assert_eq!(helper.get().unwrap().as_deref(), Some("hvs.second"));
        assert_eq!(
            std::fs::read_to_string(home.join(".vault-token")).unwrap(),
            "hvs.second"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(helper.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_file(helper.path()).unwrap();
        assert_eq!(helper.get().unwrap(), None);
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn home_comes_from_the_environment() {
        let env = |k: &str| (k == "HOME").then(|| "/home/op".to_string());
        assert_eq!(
            TokenHelper::from_env(&env).unwrap().path(),
            Path::new("/home/op/.vault-token")
        );
        assert_eq!(TokenHelper::from_env(&|_: &str| None), None);
    }
}
