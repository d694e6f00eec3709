//! The builder of a manager: the store (memory, SQLite, PostgreSQL) or the server, and the
//! library's other settings, as the JSON configuration `hms_open` takes.

use prost::Message;
use serde_json::{Map, Value};

use crate::error::{Code, Error};
use crate::proto::agent as pb;

use super::{Format, LifecycleManagerFFI, convert};

/// The configuration of a manager: embedded on memory (the default), SQLite or PostgreSQL,
/// or remote; see `hms_open` in `capi/hms_lifecycle.h` for every setting.
///
/// ```
/// use hms_agent::lifecycle::{Code, LifecycleManagerFFI};
/// // Remote: nothing listens there, but opening is lazy; the first call fails.
/// let m = LifecycleManagerFFI::builder().remote("http://127.0.0.1:9").token("secret").open().unwrap();
/// assert!(m.is_remote());
/// assert_eq!(m.register_agent("a1").unwrap_err().code(), Code::Unavailable);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Map<String, Value>,
}

impl Builder {
    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.config.insert(key.to_string(), value.into());
        self
    }

    /// Embedded on the memory store (the default).
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// LifecycleManagerFFI::builder().memory().open().unwrap();
    /// ```
    pub fn memory(self) -> Self {
        self.set("store", "memory")
    }

    /// Embedded on SQLite in the data directory `dir` (locked: one process at a time).
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().sqlite("/var/lib/hms");
    /// ```
    pub fn sqlite(self, dir: impl AsRef<std::path::Path>) -> Self {
        let dir = dir.as_ref().to_string_lossy().into_owned();
        self.set("store", "sqlite").set("data_dir", dir)
    }

    /// SQLite's durability: `"full"` (the default) or `"normal"`.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().sqlite("/var/lib/hms").sqlite_sync("normal");
    /// ```
    pub fn sqlite_sync(self, sync: &str) -> Self {
        self.set("sqlite_sync", sync)
    }

    /// Embedded on PostgreSQL (`postgres://…`), shared by every replica.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().postgres("postgres://hms@localhost/hms");
    /// ```
    pub fn postgres(self, dsn: &str) -> Self {
        self.set("store", dsn)
    }

    /// Remote: the server at `endpoint` (`http://…` or `https://…`).
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().remote("http://127.0.0.1:7460");
    /// ```
    pub fn remote(self, endpoint: &str) -> Self {
        self.set("endpoint", endpoint)
    }

    /// Remote: a bearer token.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().remote("https://hms:7460").token("t0ken");
    /// ```
    pub fn token(self, token: &str) -> Self {
        self.set("token", token)
    }

    /// Remote: the server's CA (a PEM file).
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().remote("https://hms:7460").tls_ca("ca.pem");
    /// ```
    pub fn tls_ca(self, ca_pem: impl AsRef<std::path::Path>) -> Self {
        self.set("tls_ca", ca_pem.as_ref().to_string_lossy().into_owned())
    }

    /// Remote: a client certificate and key (PEM files), for mutual TLS.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().remote("https://hms:7460").tls_client_cert("me.pem", "me.key");
    /// ```
    pub fn tls_client_cert(self, cert_pem: impl AsRef<std::path::Path>, key_pem: impl AsRef<std::path::Path>) -> Self {
        self.set("tls_cert", cert_pem.as_ref().to_string_lossy().into_owned())
            .set("tls_key", key_pem.as_ref().to_string_lossy().into_owned())
    }

    /// Remote: `"connect"` (the default), `"grpc"` or `"grpcweb"`.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().remote("http://127.0.0.1:7460").protocol("grpc");
    /// ```
    pub fn protocol(self, protocol: &str) -> Self {
        self.set("protocol", protocol)
    }

    /// History retention by age (`"720h"`) on the durable stores; each agent keeps its last event.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().sqlite("/var/lib/hms").retain_age("720h");
    /// assert!(b.to_json().contains(r#""retain_age":"720h""#));
    /// ```
    pub fn retain_age(self, age: &str) -> Self {
        self.set("retain_age", age)
    }

    /// History retention on the durable stores: the last `n` events per agent.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().sqlite("/var/lib/hms").retain_per_agent(100);
    /// assert!(b.to_json().contains(r#""retain_per_agent":100"#));
    /// ```
    pub fn retain_per_agent(self, n: u64) -> Self {
        self.set("retain_per_agent", n)
    }

    /// The default supervision policy.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// use hms_agent::proto::agent::SupervisionPolicy;
    /// let policy = SupervisionPolicy { max_recoveries: 3, ..Default::default() };
    /// LifecycleManagerFFI::builder().supervision(&policy).unwrap().open().unwrap();
    /// ```
    pub fn supervision(self, policy: &pb::SupervisionPolicy) -> Result<Self, Error> {
        let json = convert(
            "hms.agent.lifecycle.v1.SupervisionPolicy",
            Format::Protobuf,
            &policy.encode_to_vec(),
            Format::Json,
        )?;
        let v: Value = serde_json::from_slice(&json).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
        Ok(self.set("supervision", v))
    }

    /// The principal recorded as `initiated_by` (default `"ffi"`).
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let m = LifecycleManagerFFI::builder().initiator("billing").open().unwrap();
    /// assert_eq!(m.register_agent("a1").unwrap().event.initiated_by, "billing");
    /// ```
    pub fn initiator(self, principal: &str) -> Self {
        self.set("initiator", principal)
    }

    /// The plugin repository to discover, validate and watch.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().plugin_repo("/opt/hms/plugins");
    /// ```
    pub fn plugin_repo(self, dir: impl AsRef<std::path::Path>) -> Self {
        self.set("plugin_repo", dir.as_ref().to_string_lossy().into_owned())
    }

    /// The library's log: `""` (off, the default), `"stderr"` or a file to append to.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let b = LifecycleManagerFFI::builder().log("stderr");
    /// ```
    pub fn log(self, to: &str) -> Self {
        self.set("log", to)
    }

    /// Any other setting of `hms_open`, by its key.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// LifecycleManagerFFI::builder().setting("log_level", "warn".into()).open().unwrap();
    /// ```
    pub fn setting(self, key: &str, value: Value) -> Self {
        self.set(key, value)
    }

    /// The configuration as `hms_open` takes it.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// assert_eq!(LifecycleManagerFFI::builder().memory().to_json(), r#"{"store":"memory"}"#);
    /// ```
    pub fn to_json(&self) -> String {
        Value::Object(self.config.clone()).to_string()
    }

    /// Opens the manager. Errors: `InvalidArgument` naming a bad setting;
    /// `FailedPrecondition` for a data directory in use by another process.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let manager = LifecycleManagerFFI::builder().open().unwrap();
    /// ```
    pub fn open(self) -> Result<LifecycleManagerFFI, Error> {
        LifecycleManagerFFI::open(&self.to_json())
    }
}
