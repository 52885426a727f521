//! Test support: a real software TPM (`swtpm socket --tpm2`) per test, with
//! EK certificates issued by a throwaway local CA, driven through tpm2-tools.
//!
//! Each [`Swtpm`] owns a temp directory (TPM state, CA, working files) and
//! the swtpm process on free loopback ports (server N, control N+1); both go
//! away on drop. swtpm has no resource manager, so the helpers flush
//! transient objects and sessions after every step.
//!
//! ```no_run
//! # fn main() -> Result<(), attest_swtpm::HarnessError> {
//! if !attest_swtpm::tools_available_or_skip("my_test") { return Ok(()); }
//! let tpm = attest_swtpm::Swtpm::start()?;
//! let ek_cert = tpm.nv_read(attest_swtpm::EkType::Rsa2048.cert_nv_index())?;
//! # let _ = ek_cert; Ok(()) }
//! ```

use std::ffi::OsStr;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod tools;
pub use tools::{missing_tools, REQUIRED_TOOLS};

/// Harness failures.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Could not run a program.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// Program.
        program: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A program exited non-zero.
    #[error("{program} {args} failed ({status}):\n{stderr}")]
    Failed {
        /// Program.
        program: String,
        /// Arguments, joined.
        args: String,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// File-system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// swtpm did not come up.
    #[error("swtpm did not start: {0}")]
    NotStarted(String),
    /// Unexpected tool output.
    #[error("unexpected output: {0}")]
    Parse(String),
}

/// The two EKs `swtpm_setup --create-ek-cert` provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkType {
    /// RSA-2048 EK (TCG template L-1), persistent at 0x81010001.
    Rsa2048,
    /// ECC P-384 EK, persistent at 0x81010016.
    EccP384,
}

impl EkType {
    /// Persistent handle swtpm_setup uses.
    pub fn handle(self) -> &'static str {
        match self {
            Self::Rsa2048 => "0x81010001",
            Self::EccP384 => "0x81010016",
        }
    }

    /// NV index of the EK certificate.
    pub fn cert_nv_index(self) -> u32 {
        match self {
            Self::Rsa2048 => 0x01c0_0002,
            Self::EccP384 => 0x01c0_0016,
        }
    }

    /// Hash of the EK policy session (the EK's nameAlg).
    fn policy_hash(self) -> &'static str {
        match self {
            Self::Rsa2048 => "sha256",
            Self::EccP384 => "sha384",
        }
    }
}

/// Call first in every swtpm test. Returns true when the tools are there.
/// When they are missing: panics if `CI=true` (a CI run must not silently
/// skip), otherwise prints a loud message and returns false so the test can
/// return early.
#[allow(clippy::panic)]
pub fn tools_available_or_skip(test: &str) -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "swtpm test {test}: missing {} (install swtpm swtpm-tools tpm2-tools)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true so this is a failure");
    }
    // Written to the real stderr, not via eprintln!, so libtest's output
    // capture cannot hide it.
    let _ = std::io::stderr()
        .write_all(format!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n\n").as_bytes());
    false
}

/// An AK created under an EK.
#[derive(Debug, Clone)]
pub struct Ak {
    /// Saved context file of the AK.
    pub ctx: PathBuf,
    /// TPM2B_PUBLIC of the AK.
    pub public: Vec<u8>,
    /// TPM Name of the AK.
    pub name: Vec<u8>,
    /// EK it was created under.
    pub ek: EkType,
    /// Signing scheme given at creation ("ecdsa", "rsassa", "rsapss"), reused for quotes.
    pub scheme: String,
}

/// A quote as `tpm2_quote` produced it.
#[derive(Debug, Clone)]
pub struct Quote {
    /// TPMS_ATTEST bytes (`-m`).
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE bytes (`-s`).
    pub signature: Vec<u8>,
    /// (pcr index, value) of the quoted bank, ascending.
    pub pcr_values: Vec<(u8, Vec<u8>)>,
}

/// A loaded non-restricted RSA-2048 decryption key.
#[derive(Debug, Clone)]
pub struct DecryptKey {
    /// Saved context file.
    pub ctx: PathBuf,
    /// Public key as SubjectPublicKeyInfo PEM.
    pub public_pem: String,
}

/// A running swtpm with its own state and CA.
#[derive(Debug)]
pub struct Swtpm {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    counter: std::sync::atomic::AtomicU32,
}

fn free_port_pair() -> Option<u16> {
    for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = l.local_addr().ok()?.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", next)).is_ok() {
            return Some(port);
        }
    }
    None
}

fn run_cmd(cmd: &mut Command, program: &str, args: &[String]) -> Result<Output, HarnessError> {
    let out = cmd.output().map_err(|source| HarnessError::Spawn {
        program: program.into(),
        source,
    })?;
    if !out.status.success() {
        return Err(HarnessError::Failed {
            program: program.into(),
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(out)
}

impl Swtpm {
    /// Manufactures a TPM (`swtpm_setup` with RSA-2048 and ECC P-384 EKs,
    /// EK and platform certificates from a local CA in the temp dir) and
    /// starts `swtpm socket` on free loopback ports.
    pub fn start() -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new().prefix("attest-swtpm-").tempdir()?;
        let d = dir.path();
        for sub in ["state", "ca", "roots", "work"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let p = |s: &str| d.join(s).display().to_string();
        std::fs::write(
            d.join("swtpm-localca.conf"),
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
                ca = p("ca")
            ),
        )?;
        std::fs::write(
            d.join("swtpm-localca.options"),
            "--platform-manufacturer attest-test\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        let localca =
            which("swtpm_localca").unwrap_or_else(|| PathBuf::from("/usr/bin/swtpm_localca"));
        std::fs::write(
            d.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = {}\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha256\n",
                localca.display(),
                p("swtpm-localca.conf"),
                p("swtpm-localca.options")
            ),
        )?;
        let args: Vec<String> = [
            "--tpm2",
            "--tpmstate",
            &p("state"),
            "--create-ek-cert",
            "--create-platform-cert",
            "--config",
            &p("swtpm_setup.conf"),
            "--logfile",
            &p("swtpm_setup.log"),
            "--overwrite",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let setup = run_cmd(
            Command::new("swtpm_setup").args(&args).current_dir(d),
            "swtpm_setup",
            &args,
        );
        if let Err(e) = setup {
            let log = std::fs::read_to_string(d.join("swtpm_setup.log")).unwrap_or_default();
            return Err(HarnessError::NotStarted(format!("{e}\n{log}")));
        }
        // Trust anchors for chain tests: only certificates, never the CA private keys.
        for f in ["swtpm-localca-rootca-cert.pem", "issuercert.pem"] {
            std::fs::copy(d.join("ca").join(f), d.join("roots").join(f))?;
        }

        let mut last = String::from("no free port pair");
        for _ in 0..10 {
            let Some(port) = free_port_pair() else {
                continue;
            };
            let ctrl = port.saturating_add(1);
            let mut child = Command::new("swtpm")
                .arg("socket")
                .arg("--tpm2")
                .arg("--tpmstate")
                .arg(format!("dir={}", p("state")))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
                .arg("--flags")
                .arg("not-need-init,startup-clear")
                .arg("--log")
                .arg(format!("file={},level=1", p("swtpm.log")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| HarnessError::Spawn {
                    program: "swtpm".into(),
                    source,
                })?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("swtpm exited with {status} on port {port}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", ctrl)).is_ok() {
                    return Ok(Self {
                        dir,
                        child,
                        port,
                        counter: Default::default(),
                    });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("swtpm did not listen on {port}/{ctrl} within 10s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(HarnessError::NotStarted(last))
    }

    /// TCTI string for tpm2-tools.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Server port (control port is this + 1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Directory holding only the local CA certificates (root and issuer),
    /// suitable as a TPM manufacturer root directory.
    pub fn ca_certs_dir(&self) -> PathBuf {
        self.dir.path().join("roots")
    }

    /// A fresh file path in the working directory.
    pub fn work_file(&self, stem: &str) -> PathBuf {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join("work").join(format!("{stem}-{n}"))
    }

    /// Runs a tpm2-tools program against this TPM; fails on non-zero exit.
    pub fn tpm2<I, S>(&self, program: &str, args: I) -> Result<Output, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        run_cmd(
            Command::new(program)
                .args(&args)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .current_dir(self.dir.path().join("work")),
            program,
            &shown,
        )
    }

    /// Like [`Self::tpm2`] but returns the output whatever the exit status.
    pub fn tpm2_unchecked<I, S>(&self, program: &str, args: I) -> Result<Output, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(program)
            .args(args)
            .env("TPM2TOOLS_TCTI", self.tcti())
            .current_dir(self.dir.path().join("work"))
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: program.into(),
                source,
            })
    }

    /// Flushes transient objects, loaded and saved sessions (no resource manager here).
    pub fn flush_all(&self) -> Result<(), HarnessError> {
        for flag in ["-t", "-l", "-s"] {
            self.tpm2("tpm2_flushcontext", [flag])?;
        }
        Ok(())
    }

    /// Reads a whole NV index (e.g. an EK certificate).
    pub fn nv_read(&self, index: u32) -> Result<Vec<u8>, HarnessError> {
        let out = self.work_file("nv");
        self.tpm2(
            "tpm2_nvread",
            [
                format!("0x{index:08x}").as_str(),
                "-o",
                &out.display().to_string(),
            ],
        )?;
        Ok(std::fs::read(out)?)
    }

    /// TPM2B_PUBLIC of a persistent EK.
    pub fn ek_public(&self, ek: EkType) -> Result<Vec<u8>, HarnessError> {
        let out = self.work_file("ek.pub");
        self.tpm2(
            "tpm2_readpublic",
            ["-c", ek.handle(), "-o", &out.display().to_string()],
        )?;
        self.flush_all()?;
        Ok(std::fs::read(out)?)
    }

    /// Creates an AK under `ek` with `tpm2_createak`. `key_alg` e.g. "ecc256",
    /// "ecc384", "rsa2048"; `hash` "sha256"/"sha384"; `scheme` "ecdsa", "rsassa", "rsapss".
    pub fn create_ak(
        &self,
        ek: EkType,
        key_alg: &str,
        hash: &str,
        scheme: &str,
    ) -> Result<Ak, HarnessError> {
        let ctx = self.work_file("ak.ctx");
        let public = self.work_file("ak.pub");
        let name = self.work_file("ak.name");
        let s = |p: &Path| p.display().to_string();
        self.tpm2(
            "tpm2_createak",
            [
                "-C",
                ek.handle(),
                "-c",
                &s(&ctx),
                "-G",
                key_alg,
                "-g",
                hash,
                "-s",
                scheme,
                "-u",
                &s(&public),
                "-n",
                &s(&name),
            ],
        )?;
        self.flush_all()?;
        Ok(Ak {
            ctx,
            public: std::fs::read(&public)?,
            name: std::fs::read(&name)?,
            ek,
            scheme: scheme.into(),
        })
    }

    /// Extends a PCR: `bank` e.g. "sha256", `digest` of the bank's size.
    pub fn pcr_extend(&self, pcr: u8, bank: &str, digest: &[u8]) -> Result<(), HarnessError> {
        self.tpm2(
            "tpm2_pcrextend",
            [format!("{pcr}:{bank}={}", hex::encode(digest))],
        )?;
        Ok(())
    }

    /// Reads PCR values of one bank, in ascending index order.
    pub fn pcr_read(&self, bank: &str, pcrs: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, HarnessError> {
        let mut sorted = pcrs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let out = self.work_file("pcrs");
        self.tpm2(
            "tpm2_pcrread",
            [
                selection(bank, &sorted),
                "-o".into(),
                out.display().to_string(),
            ],
        )?;
        let raw = std::fs::read(out)?;
        let size = match bank {
            "sha1" => 20,
            "sha256" => 32,
            "sha384" => 48,
            "sha512" => 64,
            other => return Err(HarnessError::Parse(format!("unknown bank {other}"))),
        };
        if raw.len() != size * sorted.len() {
            return Err(HarnessError::Parse(format!(
                "pcrread wrote {} bytes",
                raw.len()
            )));
        }
        Ok(sorted
            .iter()
            .copied()
            .zip(raw.chunks(size).map(<[u8]>::to_vec))
            .collect())
    }

    /// `tpm2_quote` of `pcrs` in `bank` with `nonce` as qualifying data,
    /// signed with `hash`; returns the TPMS_ATTEST, TPMT_SIGNATURE and values.
    pub fn quote(
        &self,
        ak: &Ak,
        bank: &str,
        pcrs: &[u8],
        nonce: &[u8],
        hash: &str,
    ) -> Result<Quote, HarnessError> {
        let msg = self.work_file("quote.msg");
        let sig = self.work_file("quote.sig");
        let s = |p: &Path| p.display().to_string();
        self.tpm2(
            "tpm2_quote",
            [
                "-c".to_string(),
                s(&ak.ctx),
                "-l".into(),
                selection(bank, pcrs),
                "-q".into(),
                hex::encode(nonce),
                "-m".into(),
                s(&msg),
                "-s".into(),
                s(&sig),
                "-g".into(),
                hash.into(),
                "--scheme".into(),
                ak.scheme.clone(),
            ],
        )?;
        self.flush_all()?;
        let pcr_values = self.pcr_read(bank, pcrs)?;
        Ok(Quote {
            attest: std::fs::read(msg)?,
            signature: std::fs::read(sig)?,
            pcr_values,
        })
    }

    /// `tpm2_sign` of `message` with `ak` (the TPM hashes it first, which a
    /// restricted key requires); returns the TPMT_SIGNATURE.
    pub fn sign(&self, ak: &Ak, message: &[u8], hash: &str) -> Result<Vec<u8>, HarnessError> {
        let msg = self.work_file("sign.msg");
        let sig = self.work_file("sign.sig");
        std::fs::write(&msg, message)?;
        let s = |p: &Path| p.display().to_string();
        self.tpm2(
            "tpm2_sign",
            [
                "-c".to_string(),
                s(&ak.ctx),
                "-g".into(),
                hash.into(),
                "-s".into(),
                ak.scheme.clone(),
                "-o".into(),
                s(&sig),
                s(&msg),
            ],
        )?;
        self.flush_all()?;
        Ok(std::fs::read(sig)?)
    }

    /// Starts an EK policy session (PolicySecret(TPM_RH_ENDORSEMENT)); returns its context file.
    fn ek_session(&self, ek: EkType) -> Result<PathBuf, HarnessError> {
        let session = self.work_file("session.ctx");
        let s = session.display().to_string();
        self.tpm2(
            "tpm2_startauthsession",
            ["--policy-session", "-S", &s, "-g", ek.policy_hash()],
        )?;
        self.tpm2("tpm2_policysecret", ["-S", &s, "-c", "e"])?;
        Ok(session)
    }

    /// `tpm2_activatecredential` with `ak` and its EK on a tpm2-tools
    /// credential file; returns the released secret.
    pub fn activate_credential(
        &self,
        ak: &Ak,
        credential_file: &[u8],
    ) -> Result<Vec<u8>, HarnessError> {
        let input = self.work_file("cred.in");
        let output = self.work_file("cred.out");
        std::fs::File::create(&input)?.write_all(credential_file)?;
        let s = |p: &Path| p.display().to_string();
        let mut args = vec![
            "-c".to_string(),
            s(&ak.ctx),
            "-C".into(),
            ak.ek.handle().into(),
            "-i".into(),
            s(&input),
            "-o".into(),
            s(&output),
        ];
        // The RSA EK (template L-1) has no userWithAuth: it needs its policy.
        let session = if ak.ek == EkType::Rsa2048 {
            let session = self.ek_session(ak.ek)?;
            args.push("-P".into());
            args.push(format!("session:{}", s(&session)));
            Some(session)
        } else {
            None
        };
        let res = self.tpm2("tpm2_activatecredential", &args);
        if let Some(session) = session {
            let _ = self.tpm2("tpm2_flushcontext", [&session]);
        }
        self.flush_all()?;
        res?;
        Ok(std::fs::read(output)?)
    }

    /// Creates and loads a non-restricted RSA-2048 decryption key under an
    /// owner-hierarchy primary (what a machine would register in the EK's
    /// place to receive `ek-aes256gcm-v1` envelopes).
    pub fn create_rsa_decrypt_key(&self) -> Result<DecryptKey, HarnessError> {
        let s = |p: &Path| p.display().to_string();
        let prim = self.work_file("primary.ctx");
        let (pub_, priv_, ctx, pem) = (
            self.work_file("dk.pub"),
            self.work_file("dk.priv"),
            self.work_file("dk.ctx"),
            self.work_file("dk.pem"),
        );
        self.tpm2(
            "tpm2_createprimary",
            ["-C", "o", "-G", "rsa2048", "-c", &s(&prim)],
        )?;
        self.flush_all()?;
        self.tpm2(
            "tpm2_create",
            [
                "-C",
                &s(&prim),
                "-G",
                "rsa2048",
                "-a",
                "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt",
                "-u",
                &s(&pub_),
                "-r",
                &s(&priv_),
            ],
        )?;
        self.flush_all()?;
        self.tpm2(
            "tpm2_load",
            [
                "-C",
                &s(&prim),
                "-u",
                &s(&pub_),
                "-r",
                &s(&priv_),
                "-c",
                &s(&ctx),
            ],
        )?;
        self.flush_all()?;
        self.tpm2(
            "tpm2_readpublic",
            ["-c", &s(&ctx), "-f", "pem", "-o", &s(&pem)],
        )?;
        self.flush_all()?;
        Ok(DecryptKey {
            ctx,
            public_pem: std::fs::read_to_string(pem)?,
        })
    }

    /// `tpm2_rsadecrypt -s oaep` (OAEP with the key's nameAlg, SHA-256 here,
    /// empty label) with a key context file or handle.
    pub fn rsa_decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Vec<u8>, HarnessError> {
        let input = self.work_file("rsa.in");
        let output = self.work_file("rsa.out");
        std::fs::write(&input, ciphertext)?;
        let res = self.tpm2(
            "tpm2_rsadecrypt",
            [
                "-c",
                key,
                "-s",
                "oaep",
                "-o",
                &output.display().to_string(),
                &input.display().to_string(),
            ],
        );
        self.flush_all()?;
        res?;
        Ok(std::fs::read(output)?)
    }

    /// `tpm2_rsadecrypt` with the EK, authorised by its policy session, so a
    /// failure is the TPM refusing a restricted key rather than missing auth.
    pub fn rsa_decrypt_with_ek(&self, ciphertext: &[u8]) -> Result<Vec<u8>, HarnessError> {
        let input = self.work_file("rsa.in");
        let output = self.work_file("rsa.out");
        std::fs::write(&input, ciphertext)?;
        let session = self.ek_session(EkType::Rsa2048)?;
        let res = self.tpm2(
            "tpm2_rsadecrypt",
            [
                "-c",
                EkType::Rsa2048.handle(),
                "-s",
                "oaep",
                "-p",
                &format!("session:{}", session.display()),
                "-o",
                &output.display().to_string(),
                &input.display().to_string(),
            ],
        );
        let _ = self.tpm2("tpm2_flushcontext", [&session]);
        self.flush_all()?;
        res?;
        Ok(std::fs::read(output)?)
    }
}

fn selection(bank: &str, pcrs: &[u8]) -> String {
    let list: Vec<String> = pcrs.iter().map(u8::to_string).collect();
    format!("{bank}:{}", list.join(","))
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
