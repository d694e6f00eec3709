//! The shared conformance scenarios (testdata/scenarios/README.md) through the crate:
//! embedded, and against a real server this test starts. Calls and watches go through the
//! crate's raw JSON entry points; hook workers are the crate's Rust closures.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hms_agent::lifecycle::{Error, Format, HookDecision, LifecycleManagerFFI, RawEventStream};
use serde_json::{Map, Value};

fn scenario_dir() -> PathBuf {
    common::repo().join("testdata/scenarios")
}

fn scenarios() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", scenario_dir().display());
    files
        .into_iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            (f.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

fn plugin_repo(sc: &Value) -> Option<common::TempDir> {
    let rel = sc.get("config")?.get("plugin_repo")?.as_str()?;
    Some(common::TempDir::copy_of("plugins", &scenario_dir().join(rel)))
}

#[test]
fn scenarios_embedded() {
    for (file, sc) in scenarios() {
        let repo = plugin_repo(&sc);
        let mut b = LifecycleManagerFFI::builder();
        if let Some(r) = &repo {
            b = b.plugin_repo(&r.0);
        }
        let m = b.open().unwrap();
        Runner::new(&m, &file).run(&sc);
        m.close().unwrap();
    }
}

#[test]
fn scenarios_remote() {
    for (file, sc) in scenarios() {
        let repo = plugin_repo(&sc);
        let server = common::Server::start(repo.as_ref().map(|r| r.0.as_path()));
        let m = LifecycleManagerFFI::builder().remote(&server.url).open().unwrap();
        Runner::new(&m, &format!("{file} (remote)")).run(&sc);
        m.close().unwrap();
        drop(server);
    }
}

fn service(s: Option<&str>) -> &'static str {
    if s == Some("plugins") {
        "hms.plugin.lifecycle.v1.PluginLifecycleManager/"
    } else {
        "hms.agent.lifecycle.v1.LifecycleManager/"
    }
}

struct Runner<'a> {
    m: &'a LifecycleManagerFFI,
    file: String,
    where_: String,
    saved: HashMap<String, Value>,
    streams: HashMap<String, RawEventStream>,
    workers: HashMap<String, (Vec<String>, Arc<AtomicUsize>)>,
}

impl<'a> Runner<'a> {
    fn new(m: &'a LifecycleManagerFFI, file: &str) -> Self {
        Runner {
            m,
            file: file.to_string(),
            where_: String::new(),
            saved: HashMap::new(),
            streams: HashMap::new(),
            workers: HashMap::new(),
        }
    }

    fn fail(&self, why: impl std::fmt::Display) -> ! {
        panic!("{}: {}", self.where_, why)
    }

    fn run(&mut self, sc: &Value) {
        let steps = sc["steps"].as_array().unwrap();
        for (i, st) in steps.iter().enumerate() {
            let kind = ["call", "watch", "next", "end", "closeWatch", "hooks", "invocations", "closeHooks"]
                .iter()
                .find_map(|k| st.get(*k).map(|v| format!("{k} {}", v.as_str().unwrap_or("?"))))
                .unwrap_or_else(|| "?".into());
            self.where_ = format!("scenario {} step {} ({kind})", self.file, i + 1);
            self.step(st);
        }
        for (_, (callbacks, _)) in self.workers.drain() {
            for c in callbacks {
                self.m.stop_hook(&c);
            }
        }
    }

    fn value(&self, v: Option<&Value>) -> Value {
        let mut v = v.cloned().unwrap_or_else(|| Value::Object(Map::new()));
        self.substitute(&mut v);
        v
    }

    fn substitute(&self, v: &mut Value) {
        match v {
            Value::String(s) if s.starts_with("${") && s.ends_with('}') => {
                let name = &s[2..s.len() - 1];
                *v = self.saved.get(name).cloned().unwrap_or_else(|| self.fail(format!("nothing saved as {s}")));
            }
            Value::Object(m) => m.values_mut().for_each(|e| self.substitute(e)),
            Value::Array(a) => a.iter_mut().for_each(|e| self.substitute(e)),
            _ => {}
        }
    }

    fn check_error(&self, r: Result<(), Error>, st: &Value) {
        let want = st["expectError"].as_str().unwrap();
        let Err(e) = r else { self.fail(format!("succeeded, want {want}")) };
        if e.code().as_str() != want {
            self.fail(format!("error {e}, want {want}"));
        }
        if let Some(c) = st.get("expectErrorContains").and_then(Value::as_str) {
            if !e.message().contains(c) {
                self.fail(format!("error message {:?} does not contain {c:?}", e.message()));
            }
        }
    }

    fn step(&mut self, st: &Value) {
        let s = |k: &str| st.get(k).and_then(Value::as_str);
        if let Some(call) = s("call") {
            let req = serde_json::to_vec(&self.value(st.get("request"))).unwrap();
            let res = self.m.call_raw(&format!("{}{call}", service(s("service"))), Format::Json, &req);
            if st.get("expectError").is_some() {
                return self.check_error(res.map(|_| ()), st);
            }
            let res = res.unwrap_or_else(|e| self.fail(format!("error: {e}")));
            let got: Value = serde_json::from_slice(&res).unwrap();
            if let Some(want) = st.get("expect") {
                if let Err(why) = matches(&self.value(Some(want)), &got, "") {
                    self.fail(format!("{why}\nresponse: {got}"));
                }
            }
            if let Some(save) = st.get("save").and_then(Value::as_object) {
                for (name, path) in save {
                    let v = lookup(&got, path.as_str().unwrap())
                        .unwrap_or_else(|| self.fail(format!("save {name}: no {path} in {got}")));
                    self.saved.insert(name.clone(), v.clone());
                }
            }
        } else if let Some(name) = s("watch") {
            let req = serde_json::to_vec(&self.value(st.get("request"))).unwrap();
            let r = self.m.watch_raw_stream(s("method").unwrap(), Format::Json, &req);
            if st.get("expectError").is_some() {
                return self.check_error(r.map(|_| ()), st);
            }
            let stream = r.unwrap_or_else(|e| self.fail(e));
            self.streams.insert(name.to_string(), stream);
        } else if let Some(name) = s("next") {
            let want = self.value(st.get("expect"));
            let want = want.as_array().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut got = Vec::new();
            let mut stream = self.streams.remove(name).unwrap_or_else(|| self.fail(format!("no stream {name}")));
            while got.len() < want.len() && Instant::now() < deadline {
                match stream.next_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(Some(item)) => got.push(serde_json::from_slice::<Value>(&item).unwrap()),
                    Ok(None) => {}
                    Err(e) => self.fail(format!("stream ended after {} of {} items: {e}", got.len(), want.len())),
                }
            }
            if got.len() < want.len() {
                self.fail(format!("{} of {} items within 10s", got.len(), want.len()));
            }
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                if let Err(why) = matches(w, g, &format!("[{i}]")) {
                    self.fail(format!("{why}\nitem: {g}"));
                }
            }
            if let Some(ms) = st.get("thenNothingFor").and_then(Value::as_u64) {
                if let Ok(Some(item)) = stream.next_timeout(Duration::from_millis(ms)) {
                    self.fail(format!("unexpected item: {}", String::from_utf8_lossy(&item)));
                }
            }
            self.streams.insert(name.to_string(), stream);
        } else if let Some(name) = s("end") {
            let mut stream = self.streams.remove(name).unwrap_or_else(|| self.fail(format!("no stream {name}")));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match stream.next_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(_) => {}
                    Err(e) => return self.check_error(Err(e), st),
                }
            }
            self.fail("the stream did not end within 10s");
        } else if let Some(name) = s("closeWatch") {
            let stream = self.streams.remove(name).unwrap_or_else(|| self.fail(format!("no stream {name}")));
            stream.closer().close();
        } else if let Some(name) = s("hooks") {
            let callbacks: Vec<String> =
                st["callbacks"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
            let count = Arc::new(AtomicUsize::new(0));
            let answer = s("answer").unwrap_or("allow").to_string();
            let reason = s("reason").unwrap_or("").to_string();
            for c in &callbacks {
                let (count, answer, reason) = (count.clone(), answer.clone(), reason.clone());
                self.m
                    .serve_hook(c, move |inv| {
                        count.fetch_add(1, Ordering::SeqCst);
                        match answer.as_str() {
                            "veto" => HookDecision::Veto(reason.clone()),
                            "error" => HookDecision::Fail(reason.clone()),
                            "ignore" => {
                                // Never answer in time: wait out the invocation's deadline.
                                if let Some(d) = inv.deadline {
                                    let left = (d - chrono::Utc::now()).to_std().unwrap_or_default();
                                    std::thread::sleep(left + Duration::from_millis(50));
                                }
                                HookDecision::Allow
                            }
                            _ => HookDecision::Allow,
                        }
                    })
                    .unwrap_or_else(|e| self.fail(e));
            }
            self.workers.insert(name.to_string(), (callbacks, count));
        } else if let Some(name) = s("invocations") {
            let (_, count) = self.workers.get(name).unwrap_or_else(|| self.fail(format!("no hook worker {name}")));
            let want = st["expect"].as_u64().unwrap() as usize;
            let n = count.load(Ordering::SeqCst);
            if n != want {
                self.fail(format!("{n} invocations, want {want}"));
            }
        } else if let Some(name) = s("closeHooks") {
            let (callbacks, _) =
                self.workers.remove(name).unwrap_or_else(|| self.fail(format!("no hook worker {name}")));
            for c in callbacks {
                self.m.stop_hook(&c);
            }
        } else {
            self.fail("a step needs one of call, watch, next, end, closeWatch, hooks, invocations, closeHooks");
        }
    }
}

fn lookup<'v>(mut v: &'v Value, path: &str) -> Option<&'v Value> {
    for p in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `got` matches `want` by the README's rules (Err says why not).
fn matches(want: &Value, got: &Value, path: &str) -> Result<(), String> {
    match want {
        Value::Object(w) => {
            if w.len() == 1 {
                if let Some(c) = w.get("$contains") {
                    let g = got.as_str().unwrap_or("");
                    let c = scalar(c);
                    return if g.contains(&c) { Ok(()) } else { Err(format!("{path}: {g:?} does not contain {c:?}")) };
                }
                if let Some(l) = w.get("$len") {
                    let n = got.as_array().map_or(0, Vec::len);
                    return if n.to_string() == scalar(l) {
                        Ok(())
                    } else {
                        Err(format!("{path}: {n} elements, want {l}"))
                    };
                }
            }
            let empty = Map::new();
            let g = got.as_object().unwrap_or(&empty);
            for (k, wv) in w {
                match g.get(k) {
                    None if is_zero(wv) => {}
                    None => return Err(format!("{path}.{k}: absent, want {wv}")),
                    Some(gv) => matches(wv, gv, &format!("{path}.{k}"))?,
                }
            }
            Ok(())
        }
        Value::Array(w) => {
            let empty = Vec::new();
            let g = got.as_array().unwrap_or(&empty);
            if g.len() != w.len() {
                return Err(format!("{path}: {} elements, want {}", g.len(), w.len()));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                matches(wv, gv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => {
            if want == got || (!got.is_object() && !got.is_array() && scalar(want) == scalar(got)) {
                Ok(())
            } else {
                Err(format!("{path}: {got}, want {want}"))
            }
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.to_string() == "0",
        Value::String(s) => s.is_empty() || s == "0" || s.ends_with("_UNSPECIFIED"),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => match m.get("$len") {
            Some(l) if m.len() == 1 => scalar(l) == "0",
            _ => m.is_empty(),
        },
        Value::Null => true,
    }
}

#[test]
fn matcher_follows_the_readme() {
    use serde_json::json;
    assert!(matches(&json!({"a": 1}), &json!({"a": "1", "b": 2}), "").is_ok());
    assert!(matches(&json!({"a": 1}), &json!({"a": 2}), "").is_err());
    assert!(matches(&json!({"a": false, "s": "X_UNSPECIFIED", "l": []}), &json!({}), "").is_ok());
    assert!(matches(&json!({"a": true}), &json!({}), "").is_err());
    assert!(matches(&json!({"m": {"$contains": "ee"}}), &json!({"m": "free"}), "").is_ok());
    assert!(matches(&json!({"l": {"$len": 2}}), &json!({"l": [1]}), "").is_err());
    assert!(matches(&json!([{"x": 1}]), &json!([{"x": 1}, {"x": 2}]), "").is_err());
}
