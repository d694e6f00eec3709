//! The plugin service (`hms.plugin.lifecycle.v1.PluginLifecycleManager`): discovery,
//! validation, versions and running plugins, with the protobuf messages of
//! [`crate::proto::plugin`].

use std::ffi::CString;

use prost::Message;

use crate::error::{Code, Error};
use crate::lifecycle::LifecycleManagerFFI;
use crate::proto::plugin as pb;

pub(crate) const PLUGINS: &str = "hms.plugin.lifecycle.v1.PluginLifecycleManager/";

/// The plugin service of a manager ([`LifecycleManagerFFI::plugins`]); the manager must be
/// opened with a plugin repository (`Builder::plugin_repo`) to find any.
///
/// ```
/// use hms_agent::lifecycle::LifecycleManagerFFI;
/// use hms_agent::proto::plugin::GetPluginRequest;
/// let manager = LifecycleManagerFFI::new();
/// let err = manager.plugins().get(GetPluginRequest { id: "nope".into(), version: "1.0.0".into() }).unwrap_err();
/// assert_eq!(err.code(), hms_agent::lifecycle::Code::NotFound);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Plugins<'a> {
    manager: &'a LifecycleManagerFFI,
}

macro_rules! rpc {
    ($(#[$m:meta])* $fn:ident, $method:literal, $req:ty, $resp:ty) => {
        $(#[$m])*
        pub fn $fn(&self, request: $req) -> Result<$resp, Error> {
            self.call($method, &request)
        }
    };
}

impl<'a> Plugins<'a> {
    pub(crate) fn new(manager: &'a LifecycleManagerFFI) -> Self {
        Plugins { manager }
    }

    fn call<Req: Message, Resp: Message + Default>(&self, method: &str, req: &Req) -> Result<Resp, Error> {
        let name =
            CString::new(format!("{PLUGINS}{method}")).map_err(|_| Error::new(Code::InvalidArgument, "method"))?;
        self.manager.call(&name, req)
    }

    rpc!(
        /// Scans the plugin repository now (it is also watched).
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// let r = LifecycleManagerFFI::new().plugins().scan(Default::default());
        /// assert!(r.is_err()); // no repository configured
        /// ```
        scan, "ScanPlugins", pb::ScanPluginsRequest, pb::ScanPluginsResponse);
    rpc!(
        /// One plugin version. Errors: `NotFound`.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().get(Default::default()).is_err());
        /// ```
        get, "GetPlugin", pb::GetPluginRequest, pb::GetPluginResponse);
    rpc!(
        /// Plugin versions, filtered, in (id, version) order.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().list(Default::default()).unwrap().plugins.is_empty());
        /// ```
        list, "ListPlugins", pb::ListPluginsRequest, pb::ListPluginsResponse);
    rpc!(
        /// Validates a Discovered plugin's manifest again: Discovered → Registered.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().validate(Default::default()).is_err());
        /// ```
        validate, "ValidatePlugin", pb::PluginOperationRequest, pb::PluginOperationResponse);
    rpc!(
        /// Registered → Inactive.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().load(Default::default()).is_err());
        /// ```
        load, "LoadPlugin", pb::PluginOperationRequest, pb::PluginOperationResponse);
    rpc!(
        /// Inactive → Activating → Active (or Failed): starts the plugin's process.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().activate(Default::default()).is_err());
        /// ```
        activate, "ActivatePlugin", pb::PluginOperationRequest, pb::PluginOperationResponse);
    rpc!(
        /// Active → Deactivating → Inactive: stops the process gracefully.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().deactivate(Default::default()).is_err());
        /// ```
        deactivate, "DeactivatePlugin", pb::PluginOperationRequest, pb::PluginOperationResponse);
    rpc!(
        /// Failed → Inactive.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().reset(Default::default()).is_err());
        /// ```
        reset, "ResetPlugin", pb::PluginOperationRequest, pb::PluginOperationResponse);
    rpc!(
        /// Registered or Inactive → Deprecated, optionally naming the replacement.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().deprecate(Default::default()).is_err());
        /// ```
        deprecate, "DeprecatePlugin", pb::DeprecatePluginRequest, pb::PluginOperationResponse);
    rpc!(
        /// The preferred instance for a version constraint, and its endpoint.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// assert!(LifecycleManagerFFI::new().plugins().resolve(Default::default()).is_err());
        /// ```
        resolve, "ResolvePlugin", pb::ResolvePluginRequest, pb::ResolvePluginResponse);
    rpc!(
        /// Plugin events, chronological, paged.
        ///
        /// ```
        /// # use hms_agent::lifecycle::LifecycleManagerFFI;
        /// let r = LifecycleManagerFFI::new().plugins().history(Default::default()).unwrap();
        /// assert!(r.events.is_empty());
        /// ```
        history, "GetPluginHistory", pb::GetPluginHistoryRequest, pb::GetPluginHistoryResponse);

    /// Plugin events as they happen, resumable from a sequence: each item is a
    /// `WatchPluginEventsResponse` in protobuf (decode with `prost::Message::decode`), or use
    /// [`LifecycleManagerFFI::watch_raw_stream`] for JSON.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let manager = LifecycleManagerFFI::new();
    /// let mut events = manager.plugins().watch(Default::default()).unwrap();
    /// assert!(events.next_timeout(std::time::Duration::ZERO).unwrap().is_none());
    /// ```
    pub fn watch(&self, request: pb::WatchPluginEventsRequest) -> Result<crate::lifecycle::RawEventStream, Error> {
        self.manager.watch_raw_stream(
            &format!("{PLUGINS}WatchPluginEvents"),
            crate::lifecycle::Format::Protobuf,
            &request.encode_to_vec(),
        )
    }
}
