//! TLS to PostgreSQL (`DATABASE_URL` with `sslmode`): against a cluster of its own that the test
//! starts with `initdb` / `pg_ctl` on a loopback port, with a self-signed certificate the test
//! makes and a `pg_hba.conf` that refuses plain-text connections. The shared PostgreSQL service
//! is left alone. Skipped, saying so, without PostgreSQL's server binaries, openssl or root.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{TempDir, bet, spawn_app_on};

struct TlsCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    _dir: TempDir,
}

fn as_postgres(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser").args(["-u", "postgres", "--"]).arg(bin).args(args).output().unwrap()
}

impl TlsCluster {
    fn start() -> Option<TlsCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists());
        let tools = Command::new("openssl").arg("version").output().is_ok()
            && Command::new("runuser").arg("--help").output().is_ok()
            && unsafe { libc::geteuid() } == 0;
        let Some(bin) = bin.filter(|_| tools) else {
            eprintln!("SKIPPED: PostgreSQL server binaries, openssl and root (runuser) are needed for the TLS test");
            return None;
        };
        let dir = TempDir::new();
        let data = dir.path().join("data");
        // A CA of the test's own, and a server certificate it signs for localhost / 127.0.0.1.
        let (ca, _, _) = certificates(dir.path());

        let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
        assert!(owned.success());
        let init = as_postgres(&bin.join("initdb"), &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres"]);
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nssl = on\n\
             ssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\nfsync = off\n"
        );
        let mut postgresql = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        postgresql.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), postgresql).unwrap();
        // TLS or nothing: plain-text connections over TCP are refused.
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n").unwrap();
        let log = dir.path().join("server.log");
        let started = as_postgres(
            &bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "start"],
        );
        assert!(started.status.success(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
        Some(TlsCluster { bin, data, port, ca, _dir: dir })
    }

    fn url(&self, query: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres{query}", self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"]);
    }
}

async fn builds(url: String) -> Result<(), String> {
    let mut vars = std::collections::HashMap::new();
    vars.insert("API_PORT".to_string(), "0".to_string());
    vars.insert("DATABASE_URL".to_string(), url);
    let settings = pump_analyzer::config::Settings::from_vars(&vars, &Default::default()).unwrap();
    pump_analyzer::Application::build(settings).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn database_urls_choose_tls_with_or_without_checking_the_certificate() {
    let Some(cluster) = TlsCluster::start() else { return };
    // The cluster refuses plain text, and a certificate no system CA signed fails verify-full.
    let plain = builds(cluster.url("")).await.unwrap_err();
    assert!(plain.contains("pg_hba") || plain.contains("no encryption") || plain.contains("SSL off"), "{plain}");
    let untrusted = builds(cluster.url("?sslmode=verify-full")).await.unwrap_err();
    assert!(untrusted.to_ascii_lowercase().contains("certificate"), "{untrusted}");
    // require encrypts without checking; verify-ca and verify-full check against sslrootcert.
    for query in ["?sslmode=require", "?sslmode=verify-ca&sslrootcert=CA", "?sslmode=verify-full&sslrootcert=CA"] {
        let query = query.replace("CA", cluster.ca.to_str().unwrap());
        let url = cluster.url(&query);
        let database = crate::helpers::TestDatabase::Shared(url.clone());
        let app = spawn_app_on(database, &[]).await;
        assert_eq!(app.ingest(&bet(&format!("tls{}", query.len()), 1)).await.status(), 200, "{query}");
        let (status, _) = app.get("/live/streams").await;
        assert_eq!(status, 200, "{query}");
    }
}

/// A CA and a server certificate it signs for localhost / 127.0.0.1, made with openssl in `dir`:
/// (CA certificate, server certificate, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let runs: [Vec<String>; 3] = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pump-test-ca", "-keyout"]
            .into_iter()
            .map(String::from)
            .chain([p("ca.key"), "-out".into(), p("ca.crt")])
            .collect(),
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout"]
            .into_iter()
            .map(String::from)
            .chain([p("server.key"), "-out".into(), p("server.csr")])
            .collect(),
        ["x509", "-req", "-days", "1", "-CAcreateserial", "-in"]
            .into_iter()
            .map(String::from)
            .chain([p("server.csr"), "-CA".into(), p("ca.crt"), "-CAkey".into(), p("ca.key")])
            .chain(["-extfile".into(), p("ext.cnf"), "-out".into(), p("server.crt")])
            .collect(),
    ];
    for args in runs {
        let made = Command::new("openssl").args(&args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
    }
    (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"))
}

/// A redis-server of the test's own that speaks TLS only, on a loopback port.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    fn start() -> Option<TlsRedis> {
        if Command::new("redis-server").arg("--version").output().is_err()
            || Command::new("openssl").arg("version").output().is_err()
        {
            eprintln!("SKIPPED: redis-server and openssl are needed for the Redis TLS test");
            return None;
        }
        let dir = TempDir::new();
        let (ca, cert, key) = certificates(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let redis = TlsRedis { child, port, _dir: dir };
        assert!(crate::helpers::wait_for_port(port), "redis-server with TLS did not start");
        Some(redis)
    }
}

async fn build_with_redis(dir: &Path, url: &str) -> Result<pump_analyzer::Application, String> {
    let mut vars = std::collections::HashMap::new();
    vars.insert("API_PORT".to_string(), "0".to_string());
    vars.insert("DATABASE_URL".to_string(), format!("sqlite://{}/pump.db", dir.display()));
    vars.insert("REDIS_URL".to_string(), url.to_string());
    vars.insert("REDIS_KEY_PREFIX".to_string(), format!("pump-tls-{}:", pump_analyzer::security::random_hex(4)));
    vars.insert("INGEST_RATE_LIMIT".to_string(), "2".to_string());
    let settings = pump_analyzer::config::Settings::from_vars(&vars, &Default::default()).unwrap();
    pump_analyzer::Application::build(settings).await.map_err(|e| e.to_string())
}

/// `rediss://` speaks TLS: a plain-text client cannot use the TLS port, an unknown CA is refused
/// at start-up, and with the check waived (`#insecure`) the shared rate limit works.
#[tokio::test]
async fn rediss_urls_reach_a_redis_that_speaks_only_tls() {
    let Some(redis) = TlsRedis::start() else { return };
    let dir = TempDir::new();
    let plain = build_with_redis(dir.path(), &format!("redis://127.0.0.1:{}", redis.port)).await;
    assert!(plain.is_err(), "plain text is not understood on the TLS port");
    let untrusted = build_with_redis(dir.path(), &format!("rediss://localhost:{}", redis.port)).await.err().unwrap();
    assert!(untrusted.contains("REDIS_URL"), "{untrusted}");
    let app = build_with_redis(dir.path(), &format!("rediss://127.0.0.1:{}/#insecure", redis.port)).await.unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for n in 1..=3 {
        let response =
            client.post(format!("{address}/live/ingest")).json(&bet(&format!("r{n}"), n)).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "the limit is counted in the TLS Redis");
}
