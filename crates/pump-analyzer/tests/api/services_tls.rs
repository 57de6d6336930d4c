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
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        for args in [
            vec!["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pump-test-ca"]
                .into_iter()
                .map(String::from)
                .chain(["-keyout".into(), p("ca.key"), "-out".into(), p("ca.crt")])
                .collect::<Vec<_>>(),
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
        ] {
            let made = Command::new("openssl").args(&args).output().unwrap();
            assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
        }
        let cert = dir.path().join("ca.crt");
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
        Some(TlsCluster { bin, data, port, ca: cert, _dir: dir })
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
