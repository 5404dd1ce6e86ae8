//! A real OpenLDAP `slapd` (Debian's `slapd` package) on 127.0.0.1, in a directory of its
//! own, loaded with `slapadd` before it starts: AD's attributes from
//! `tests/fixtures/ad.schema`, the entries from an LDIF file.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=corp,dc=example";
pub const ROOT_DN: &str = "cn=admin,dc=corp,dc=example";
pub const ROOT_PASSWORD: &str = "directory-manager-secret";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

pub struct Slapd {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

impl Slapd {
    /// Starts slapd with the entries of `ldif` (a file under `tests/fixtures`).
    pub fn start(ldif: &str) -> Slapd {
        assert!(
            Path::new(SLAPD).exists(),
            "the LDAP tests run a real OpenLDAP server: install it with `apt-get install slapd` \
             (bash .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include {schema}\n\
                 pidfile {dir}/slapd.pid\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 104857600\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PASSWORD}\n\
                 directory {dir}/db\n",
                schema = fixtures().join("ad.schema").display(),
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        let load = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(fixtures().join(ldif))
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ldap://127.0.0.1:{port}");
        // `-d 0`: stay in the foreground (and so die with the test), log nothing.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &format!("{url}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start on {url}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
