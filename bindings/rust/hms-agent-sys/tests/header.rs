//! Checks the hand-written declarations in src/lib.rs against capi/hms_lifecycle.h: every
//! function of the header is declared with the same parameters (count and types, mapped
//! C → Rust) and return type, every #define'd constant with the same value, and nothing more.

use std::collections::BTreeMap;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// C type → the Rust type the declarations must use.
fn rust_type(c: &str) -> String {
    let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
    let (base, stars) = (c.trim_end_matches(['*', ' ']).to_string(), c.matches('*').count());
    let is_const = base.starts_with("const ");
    let base = base.trim_start_matches("const ").trim();
    let prim = match base {
        "void" => "c_void",
        "uint8_t" => "u8",
        "uint32_t" => "u32",
        "uint64_t" => "u64",
        "int32_t" => "i32",
        "int64_t" => "i64",
        "size_t" => "usize",
        "char" => "c_char",
        "hms_status" => "hms_status",
        other => panic!("unmapped C type {other}"),
    };
    if stars == 0 {
        return if prim == "c_void" { "()".into() } else { prim.into() };
    }
    let mut t = prim.to_string();
    for i in 0..stars {
        let q = if i == 0 && is_const { "*const " } else { "*mut " };
        t = format!("{q}{t}");
    }
    t
}

/// name → (parameter types, return type), from C prototypes.
fn header_functions(h: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    // Prototypes: collapse whitespace, strip comments, split on ';'.
    let mut code = String::new();
    let mut rest = h;
    while let Some(i) = rest.find("/*") {
        code.push_str(&rest[..i]);
        rest = &rest[i + rest[i..].find("*/").unwrap() + 2..];
    }
    code.push_str(rest);
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" ");
    for stmt in code.split(';') {
        let stmt = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(open) = stmt.find("hms_") else { continue };
        if !stmt.contains('(') || stmt.contains("typedef") || stmt.contains('{') {
            continue;
        }
        let paren = stmt.find('(').unwrap();
        if open > paren {
            continue;
        }
        let head = &stmt[..paren];
        let name_start = head.rfind([' ', '*']).map_or(0, |i| i + 1);
        let name = head[name_start..].to_string();
        let ret = rust_type(head[..name_start].trim());
        let params = &stmt[paren + 1..stmt.rfind(')').unwrap()];
        let types: Vec<String> = if params.trim() == "void" {
            vec![]
        } else {
            params
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    let i = p.rfind([' ', '*']).unwrap();
                    rust_type(&p[..=i])
                })
                .collect()
        };
        out.insert(name, (types, ret));
    }
    out
}

fn rust_functions(src: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    let body = &src[src.find("unsafe extern \"C\"").unwrap()..];
    let decls: String = body.lines().filter(|l| !l.trim_start().starts_with("///")).collect::<Vec<_>>().join(" ");
    for decl in decls.split("pub fn ").skip(1) {
        let decl = decl.split(';').next().unwrap();
        let name = decl[..decl.find('(').unwrap()].trim().to_string();
        let close = decl.rfind(')').unwrap();
        let params = &decl[decl.find('(').unwrap() + 1..close];
        let ret = decl[close + 1..].trim().trim_start_matches("->").trim();
        let ret = if ret.is_empty() { "()".to_string() } else { ret.to_string() };
        let types = params
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let t = p.split_once(':').unwrap().1.trim();
                t.replace("std::ffi::c_void", "c_void").split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        out.insert(name, (types, ret));
    }
    out
}

#[test]
fn declarations_match_the_header() {
    let h = read("../../../capi/hms_lifecycle.h");
    let src = read("src/lib.rs");
    let want = header_functions(&h);
    let got = rust_functions(&src);
    assert!(want.len() >= 13, "parsed only {} prototypes from the header: {want:?}", want.len());
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "function names");
    for (name, w) in &want {
        assert_eq!(&got[name], w, "{name}: (parameters, return) in src/lib.rs vs the header");
    }
}

#[test]
fn constants_match_the_header() {
    let h = read("../../../capi/hms_lifecycle.h");
    let src = read("src/lib.rs");
    let mut n = 0;
    for line in h.lines() {
        let mut f = line.split_whitespace();
        if f.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value)) = (f.next(), f.next()) else { continue };
        if !name.starts_with("HMS_") {
            continue;
        }
        let decl = src
            .lines()
            .find(|l| l.starts_with(&format!("pub const {name}:")))
            .unwrap_or_else(|| panic!("{name} is not declared in src/lib.rs"));
        assert!(decl.trim_end().ends_with(&format!("= {value};")), "{name}: header says {value}, src/lib.rs: {decl}");
        n += 1;
    }
    assert!(n >= 20, "only {n} constants");
}

#[test]
fn status_layout() {
    use hms_agent_sys::hms_status;
    assert_eq!(std::mem::size_of::<hms_status>(), 24);
    assert_eq!(std::mem::offset_of!(hms_status, message), 8);
    assert_eq!(std::mem::offset_of!(hms_status, resume_sequence), 16);
}
