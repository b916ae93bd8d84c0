//! A private nginx on loopback serving one directory, for the update-channel tests and
//! benchmark: the static HTTP server a vendor would put a repository on.
//!
//! Each [`Nginx`] is its own process (`daemon off; master_process off`) with its
//! configuration, logs and temporary files in a temporary directory, listening on a free
//! port of 127.0.0.1; it is killed when dropped. Its access log records each request's
//! URI, status and bytes sent ([`Nginx::requests`]), so tests can say what went over the
//! wire.
//!
//! The binary comes from Debian's `nginx` package (`scripts/ensure-nginx.sh` installs it;
//! `.ci/run` runs that script and sets `HOTFIX_REQUIRE_NGINX=1`, so that in CI a missing
//! nginx fails the test instead of skipping it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx serving one directory.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// One line of the access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request URI.
    pub uri: String,
    /// The response status.
    pub status: u16,
    /// Bytes sent to the client, headers included.
    pub bytes_sent: u64,
}

/// Where the nginx binary is: on `PATH`, or Debian's `/usr/sbin/nginx`.
pub fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/sbin/nginx")]).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

fn config(dir: &Path, served: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root root;\n\
         error_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
           log_format poll '$request_uri $status $bytes_sent';\n\
           access_log {d}/access.log poll;\n\
           client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy; fastcgi_temp_path {d}/tmp/fastcgi;\n\
           uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;\n\
           types {{ application/json json; }}\n\
           default_type application/octet-stream;\n\
           keepalive_requests 100000;\n\
           server {{ listen 127.0.0.1:{port}; root {served}; autoindex off; }}\n\
         }}\n",
        served = served.display()
    )
}

impl Nginx {
    /// Starts nginx serving `served` (a directory), or says why not: `None` with a `SKIP`
    /// line when there is no nginx binary and `HOTFIX_REQUIRE_NGINX` is not `1`.
    pub fn serve(served: &Path) -> Option<Nginx> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var("HOTFIX_REQUIRE_NGINX").as_deref() != Ok("1"),
                "nginx is required (HOTFIX_REQUIRE_NGINX=1) but not installed: run scripts/ensure-nginx.sh"
            );
            println!("SKIP: nginx is not installed (scripts/ensure-nginx.sh installs it from Debian)");
            return None;
        };
        let served = std::path::absolute(served).expect("an absolute path");
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            std::fs::create_dir(dir.path().join("tmp")).expect("nginx's temporary directory");
            let port = free_port();
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, config(dir.path(), &served, port)).expect("nginx.conf");
            let child = Command::new(&bin)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx starts");
            let mut n = Nginx { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = n.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(n);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last = std::fs::read_to_string(n.dir.path().join("error.log")).unwrap_or_default();
        }
        panic!("nginx did not start on loopback (five ports tried); its error log:\n{last}");
    }

    /// The URL of the served directory, with a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request logged so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(Request {
                    uri: f.next()?.to_string(),
                    status: f.next()?.parse().ok()?,
                    bytes_sent: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
