use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const AIM: &str = env!("CARGO_BIN_EXE_aim");

/// `aim serve` as a child process in `dir` (so `./aim-data` is the default data dir).
pub struct Serve {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// What `aim serve` printed on stdout so far.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serve {
    pub fn start(dir: &Path) -> Serve {
        Self::start_with(dir, &[])
    }

    /// [`Serve::start`] with more `aim serve` arguments.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(AIM)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir)
            .env_remove("AIM_DATA_DIR")
            .env_remove("AIM_DATABASE_URL")
            .env("AIM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn aim serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a line").expect("read");
        let addr = first
            .strip_prefix("aim listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        // Keep draining so the child never blocks on a full pipe, and keep what it said.
        let output = std::sync::Arc::new(std::sync::Mutex::new(vec![first]));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Serve {
            child,
            addr,
            dir: dir.to_path_buf(),
            output,
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("aim-data/bootstrap-admin-token"))
            .expect("token file")
            .trim()
            .to_owned()
    }

    /// `aim <args>` against this server with `token`; returns (exit status, stdout, stderr).
    pub fn aim(&self, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(AIM);
        cmd.args(args)
            .env("AIM_ADDR", &self.addr)
            .env_remove("AIM_TOKEN")
            .env_remove("AIM_CA_CERT");
        if let Some(t) = token {
            cmd.env("AIM_TOKEN", t);
        }
        let out = cmd.output().expect("run aim");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The output of a command that must succeed.
pub fn ok((code, out, err): (i32, String, String)) -> String {
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// `aim identity request NAME` of a low-risk identity touching `crm`, sponsored by
/// `sponsor`, ending in 30 days.
pub fn request<'a>(
    name: &'a str,
    kind: &'a str,
    autonomy: &'a str,
    sponsor: &'a str,
) -> Vec<&'a str> {
    vec![
        "identity",
        "request",
        name,
        "--kind",
        kind,
        "--autonomy",
        autonomy,
        "--sponsor",
        sponsor,
        "--purpose",
        "a test identity",
        "--system",
        "crm",
        "--sensitivity",
        "internal",
        "--criticality",
        "low",
        "--impact",
        "low",
        "--expires-in",
        "30d",
    ]
}
