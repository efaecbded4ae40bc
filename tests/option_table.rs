//! One list of options, checked against its three other spellings: the parser's
//! `engine::config::OPTION_NAMES` is the list; the TypeScript `UploadOptions` (src/api/ts.rs) and
//! the README's option table must name exactly those options, and every kind of value the
//! parser accepts for an option (a string, a number, a list of strings…) must be one its
//! TypeScript type admits, and the other way round.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use resumable_wasm::engine::config::OPTION_NAMES;
use resumable_wasm::engine::{Config, OptionValue};

const TS: &str = include_str!("../src/api/ts.rs");
const README: &str = include_str!("../README.md");

/// `name → type` of every member of `export interface UploadOptions { … }`.
fn typescript_options() -> BTreeMap<String, String> {
    let start = TS.find("export interface UploadOptions {").unwrap();
    let body = &TS[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("/**") && !l.starts_with('*'))
        .map(|l| {
            let (name, ty) = l.split_once(':').unwrap();
            let ty = ty.trim().trim_end_matches(';');
            (name.trim_end_matches('?').to_owned(), ty.to_owned())
        })
        .collect()
}

/// The option names of the README's option table (the rows between its header and the next
/// blank line; `a` … `b` stands for every option from `a` to `b` in `OPTION_NAMES`).
fn readme_options() -> BTreeSet<String> {
    let start = README
        .find("| Option |")
        .expect("the README's option table");
    let mut names = BTreeSet::new();
    for row in README[start..].lines().skip(2) {
        if !row.starts_with('|') {
            break;
        }
        let first = row.split('|').nth(1).unwrap();
        let ticked: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        if first.contains('…') {
            let from = OPTION_NAMES.iter().position(|n| *n == ticked[0]).unwrap();
            let to = OPTION_NAMES.iter().position(|n| *n == ticked[1]).unwrap();
            names.extend(OPTION_NAMES[from..=to].iter().map(|n| (*n).to_owned()));
        } else {
            names.extend(ticked.iter().map(|n| (*n).to_owned()));
        }
    }
    names
}

/// The kinds of JavaScript value an option may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Bool,
    Number,
    Str,
    Null,
    Strings,
    Numbers,
    Object,
    Function,
}

const KINDS: [Kind; 8] = [
    Kind::Bool,
    Kind::Number,
    Kind::Str,
    Kind::Null,
    Kind::Strings,
    Kind::Numbers,
    Kind::Object,
    Kind::Function,
];

/// Values of `kind` to try: any one the parser takes means it takes that kind.
fn samples(kind: Kind) -> Vec<OptionValue> {
    let strings = [
        "https://up.example/u",
        "x",
        "auto",
        "flow",
        "resumable",
        "octet",
        "multipart",
        "bytes",
        "chunk",
        "unique",
        "compatible",
        "PUT",
        "pdf",
        "crc32c",
    ];
    let numbers = [1.0, 3.0, 500.0, 1000.0, 30_000.0, 200.0, 16_777_216.0];
    match kind {
        Kind::Bool => vec![OptionValue::Bool(true), OptionValue::Bool(false)],
        Kind::Number => numbers.iter().map(|n| OptionValue::number(*n)).collect(),
        Kind::Str => strings
            .iter()
            .map(|s| OptionValue::Str((*s).into()))
            .collect(),
        Kind::Null => vec![OptionValue::Null],
        Kind::Strings => vec![OptionValue::List(vec![OptionValue::Str("pdf".into())])],
        Kind::Numbers => [200.0, 500.0]
            .iter()
            .map(|n| OptionValue::List(vec![OptionValue::number(*n)]))
            .collect(),
        Kind::Object => vec![
            OptionValue::Map(vec![("x".into(), OptionValue::Str("1".into()))]),
            s3_callbacks(),
        ],
        Kind::Function => vec![OptionValue::Function],
    }
}

/// A complete `s3` option: its five callbacks.
fn s3_callbacks() -> OptionValue {
    OptionValue::Map(
        resumable_wasm::engine::config::S3_CALLBACKS
            .iter()
            .map(|n| ((*n).to_owned(), OptionValue::Function))
            .collect(),
    )
}

/// A complete `s3` option of `protocol: 's3-post'`: its four callbacks.
fn s3_post_callbacks() -> OptionValue {
    OptionValue::Map(
        resumable_wasm::engine::config::S3_POST_CALLBACKS
            .iter()
            .map(|n| ((*n).to_owned(), OptionValue::Function))
            .collect(),
    )
}

/// Whether the parser takes `value` for option `name` (with a valid `target` beside it, and
/// the other half of the `protocol: 's3'` + `s3` pair when one of them is tried).
fn parser_accepts(name: &str, value: &OptionValue) -> bool {
    let companion = match (name, value) {
        ("s3", _) => Some(("protocol", OptionValue::Str("s3".into()))),
        ("protocol", OptionValue::Str(s)) if s == "s3" => Some(("s3", s3_callbacks())),
        ("protocol", OptionValue::Str(s)) if s == "s3-post" => Some(("s3", s3_post_callbacks())),
        ("maxChunkSize", _) => Some(("chunkSize", OptionValue::Str("auto".into()))),
        _ => None,
    };
    let mut keys: Vec<String> = if name == "target" {
        vec![name.to_owned()]
    } else {
        vec!["target".to_owned(), name.to_owned()]
    };
    keys.extend(companion.iter().map(|(k, _)| (*k).to_owned()));
    let get = |k: &str| {
        if k == name {
            value.clone()
        } else if k == "target" {
            OptionValue::Str("https://up.example/u".into())
        } else if let Some((_, v)) = companion.as_ref().filter(|(c, _)| *c == k) {
            v.clone()
        } else {
            OptionValue::Missing
        }
    };
    Config::from_options(&keys, &get, Some("https://app.example")).is_ok()
}

/// The kinds a TypeScript type admits (the few shapes `UploadOptions` uses).
fn typescript_kinds(ty: &str) -> BTreeSet<Kind> {
    let mut kinds = BTreeSet::new();
    if ty.contains("=>") {
        kinds.insert(Kind::Function);
        return kinds;
    }
    for part in ty.split('|').map(str::trim) {
        match part {
            "boolean" | "false" | "true" => kinds.insert(Kind::Bool),
            "number" => kinds.insert(Kind::Number),
            "string" => kinds.insert(Kind::Str),
            p if p.starts_with('\'') => kinds.insert(Kind::Str),
            "null" => kinds.insert(Kind::Null),
            "string[]" => kinds.insert(Kind::Strings),
            "number[]" => kinds.insert(Kind::Numbers),
            "S3Callbacks" | "S3PostCallbacks" => kinds.insert(Kind::Object),
            "QueryOption" | "HeadersOption" => {
                kinds.insert(Kind::Object);
                kinds.insert(Kind::Function)
            }
            "TargetOption" => {
                kinds.insert(Kind::Str);
                kinds.insert(Kind::Function)
            }
            other => panic!("no kinds known for the TypeScript type `{other}`"),
        };
    }
    kinds
}

#[test]
fn typescript_readme_and_parser_name_the_same_options() {
    let parser: BTreeSet<String> = OPTION_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let ts: BTreeSet<String> = typescript_options().into_keys().collect();
    let readme = readme_options();
    assert_eq!(
        ts.symmetric_difference(&parser).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "UploadOptions in src/api/ts.rs and OPTION_NAMES differ"
    );
    assert_eq!(
        readme.symmetric_difference(&parser).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the README's option table and OPTION_NAMES differ"
    );
}

#[test]
fn each_option_s_typescript_type_admits_what_the_parser_takes() {
    let mut disagreements = Vec::new();
    for (name, ty) in typescript_options() {
        let declared = typescript_kinds(&ty);
        // `null` means "the default" to the parser for most options, as `undefined` does; the
        // type need not spell that out, but where it does, the parser must take it.
        let taken: BTreeSet<Kind> = KINDS
            .into_iter()
            .filter(|k| *k != Kind::Null || declared.contains(k))
            .filter(|k| samples(*k).iter().any(|v| parser_accepts(&name, v)))
            .collect();
        if declared != taken {
            disagreements.push(format!(
                "{name}: TypeScript `{ty}` admits {declared:?}, the parser takes {taken:?}"
            ));
        }
        // Every string literal of the type is a value the parser takes.
        for literal in ty.split('|').map(str::trim).filter(|p| p.starts_with('\'')) {
            let value = OptionValue::Str(literal.trim_matches('\'').to_owned());
            if !parser_accepts(&name, &value) {
                disagreements.push(format!("{name}: the parser refuses {literal}"));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
