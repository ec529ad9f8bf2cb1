//! XML-RPC for the lab's web server (`POST /RPC2`): parses a `methodCall`, runs the method, writes the
//! `methodResponse` (<http://xmlrpc.com/spec.md>; fault codes from the "specification for fault code
//! interoperability"). The methods, value types and faults are listed in the parent module's doc.
//!
//! The call is parsed by quick-xml into a small element tree first, at most [`MAX_DEPTH`] deep (the body is
//! already bounded by the parent's `MAX_BODY`), and XML-RPC is read from the tree.

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::QUOTES;
use crate::clock::{unix_now, Utc};

/// The deepest XML element nesting of a call (each struct level costs three): bounds the recursion.
pub const MAX_DEPTH: usize = 64;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    Double(f64),
    DateTime(String),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
    Nil,
}

/// A fault: code and message, raised as `xmlrpc.client.Fault` by Python.
struct Fault(i32, String);

const PARSE_ERROR: i32 = -32700;
const INVALID_REQUEST: i32 = -32600;
const NO_METHOD: i32 = -32601;
const BAD_PARAMS: i32 = -32602;

/// The methods and their help.
const METHODS: [(&str, &str); 6] = [
    ("add", "add(a, b): the sum of two numbers (int or double)."),
    ("echo", "echo(x): x itself, any XML-RPC value."),
    (
        "lab.time",
        "lab.time(): the lab's time (UTC), as an ISO 8601 string.",
    ),
    (
        "lab.quote",
        "lab.quote(): a quotation about networks; it changes every second.",
    ),
    (
        "system.listMethods",
        "system.listMethods(): the names of the methods.",
    ),
    (
        "system.methodHelp",
        "system.methodHelp(name): what a method does.",
    ),
];

/// The XML-RPC response to a request body: the method's result, or a fault.
pub(super) fn respond(body: &[u8]) -> String {
    let result = parse_call(body).and_then(|(method, params)| call(&method, params));
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<methodResponse>");
    match result {
        Ok(value) => {
            xml.push_str("<params><param>");
            write_value(&mut xml, &value);
            xml.push_str("</param></params>");
        }
        Err(Fault(code, message)) => {
            let fault = Value::Struct(vec![
                ("faultCode".into(), Value::Int(code.into())),
                ("faultString".into(), Value::Str(message)),
            ]);
            xml.push_str("<fault>");
            write_value(&mut xml, &fault);
            xml.push_str("</fault>");
        }
    }
    xml.push_str("</methodResponse>\n");
    xml
}

fn call(method: &str, params: Vec<Value>) -> Result<Value, Fault> {
    let bad = |usage: &str| Err(Fault(BAD_PARAMS, format!("usage: {usage}")));
    match (method, params.as_slice()) {
        ("add", [Value::Int(a), Value::Int(b)]) => match a.checked_add(*b) {
            Some(sum) => Ok(Value::Int(sum)),
            None => Err(Fault(BAD_PARAMS, "the sum is too large".into())),
        },
        ("add", [a, b]) => match (number(a), number(b)) {
            (Some(a), Some(b)) if (a + b).is_finite() => Ok(Value::Double(a + b)),
            _ => bad(METHODS[0].1),
        },
        ("echo", [x]) => Ok(x.clone()),
        ("lab.time", []) => Ok(Value::Str(Utc::now().iso8601())),
        ("lab.quote", []) => {
            let (author, text) = QUOTES[unix_now().rem_euclid(QUOTES.len() as i64) as usize];
            Ok(Value::Str(format!("{text} ({author})")))
        }
        ("system.listMethods", []) => Ok(Value::Array(
            METHODS
                .iter()
                .map(|(name, _)| Value::Str(name.to_string()))
                .collect(),
        )),
        ("system.methodHelp", [Value::Str(name)]) => {
            match METHODS.iter().find(|(n, _)| n == name) {
                Some((_, help)) => Ok(Value::Str(help.to_string())),
                None => Err(Fault(NO_METHOD, format!("no method {name:?}"))),
            }
        }
        _ => match METHODS.iter().find(|(name, _)| *name == method) {
            Some((_, help)) => bad(help),
            None => Err(Fault(
                NO_METHOD,
                format!("no method {method:?}; system.listMethods() lists them"),
            )),
        },
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(n) => Some(*n as f64),
        Value::Double(x) => Some(*x),
        _ => None,
    }
}

/// An XML element: its name, child elements and the text directly inside it.
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses an XML document into a tree, at most [`MAX_DEPTH`] deep. DTDs are refused (no entity tricks), and
/// only XML's own entities are known.
fn parse_xml(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        let text = match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH || root.is_some() {
                    return Err("too deep, or more than one root element".into());
                }
                let name = start.name().as_ref().to_string();
                stack.push(Element {
                    name,
                    children: Vec::new(),
                    text: String::new(),
                });
                continue;
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag with no start")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
                continue;
            }
            Event::Text(t) => t.xml10_content().into_owned(),
            Event::CData(c) => c.into_inner().into_owned(),
            Event::GeneralRef(r) => match (r.resolve_char_ref(), &*r) {
                (Ok(Some(c)), _) => c.to_string(),
                (_, "lt") => "<".into(),
                (_, "gt") => ">".into(),
                (_, "amp") => "&".into(),
                (_, "apos") => "'".into(),
                (_, "quot") => "\"".into(),
                (_, name) => return Err(format!("unknown entity &{name};")),
            },
            Event::DocType(_) => return Err("a DTD is not allowed".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::Empty(_) => continue,
            Event::Eof => break,
        };
        match stack.last_mut() {
            Some(element) => element.text.push_str(&text),
            None if text.trim().is_empty() => {}
            None => return Err("text outside the root element".into()),
        }
    }
    match (stack.is_empty(), root) {
        (true, Some(root)) => Ok(root),
        _ => Err("the document ends early".into()),
    }
}

fn parse_call(body: &[u8]) -> Result<(String, Vec<Value>), Fault> {
    let root =
        parse_xml(body).map_err(|e| Fault(PARSE_ERROR, format!("not well-formed XML: {e}")))?;
    let invalid = |why: &str| Fault(INVALID_REQUEST, format!("not an XML-RPC call: {why}"));
    if root.name != "methodCall" {
        return Err(invalid("the root must be <methodCall>"));
    }
    let name = root
        .child("methodName")
        .ok_or_else(|| invalid("no <methodName>"))?;
    let mut params = Vec::new();
    for param in root.child("params").map_or(&[][..], |p| &p.children) {
        let value = param.child("value").filter(|_| param.name == "param");
        let value = value.ok_or_else(|| invalid("<params> holds <param><value>"))?;
        params.push(parse_value(value).map_err(|e| invalid(&e))?);
    }
    Ok((name.text.trim().to_string(), params))
}

/// Reads a `<value>` element.
fn parse_value(value: &Element) -> Result<Value, String> {
    let typed = match value.children.as_slice() {
        [] => return Ok(Value::Str(value.text.clone())),
        [typed] => typed,
        _ => return Err("a <value> holds one type".into()),
    };
    let text = typed.text.trim();
    let bad = || format!("bad <{}>: {text:?}", typed.name);
    Ok(match typed.name.as_str() {
        "int" | "i4" | "i8" => Value::Int(text.parse().map_err(|_| bad())?),
        "boolean" => match text {
            "0" => Value::Bool(false),
            "1" => Value::Bool(true),
            _ => return Err(bad()),
        },
        "string" => Value::Str(typed.text.clone()),
        "double" => Value::Double(
            text.parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(bad)?,
        ),
        "dateTime.iso8601" => Value::DateTime(text.to_string()),
        "base64" => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Value::Base64(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| bad())?,
            )
        }
        "nil" => Value::Nil,
        "array" => {
            let data = typed.child("data").ok_or("an <array> holds <data>")?;
            Value::Array(
                data.children
                    .iter()
                    .map(parse_value)
                    .collect::<Result<_, _>>()?,
            )
        }
        "struct" => Value::Struct(
            typed
                .children
                .iter()
                .map(
                    |member| match (member.child("name"), member.child("value")) {
                        (Some(name), Some(value)) => Ok((name.text.clone(), parse_value(value)?)),
                        _ => Err("a <member> holds <name> and <value>".to_string()),
                    },
                )
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("unknown type <{other}>")),
    })
}

fn write_value(out: &mut String, value: &Value) {
    let escape = |s: &str| quick_xml::escape::escape(s).into_owned();
    out.push_str("<value>");
    match value {
        Value::Int(n) if i32::try_from(*n).is_ok() => out.push_str(&format!("<int>{n}</int>")),
        Value::Int(n) => out.push_str(&format!("<i8>{n}</i8>")),
        Value::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        Value::Str(s) => out.push_str(&format!("<string>{}</string>", escape(s))),
        Value::Double(x) => out.push_str(&format!("<double>{x:?}</double>")),
        Value::DateTime(s) => out.push_str(&format!(
            "<dateTime.iso8601>{}</dateTime.iso8601>",
            escape(s)
        )),
        Value::Base64(bytes) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            out.push_str(&format!("<base64>{encoded}</base64>"));
        }
        Value::Array(values) => {
            out.push_str("<array><data>");
            values.iter().for_each(|v| write_value(out, v));
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, v) in members {
                out.push_str(&format!("<member><name>{}</name>", escape(name)));
                write_value(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_xml_is_refused() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse_xml(deep.as_bytes()).is_err());
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse_xml(ok.as_bytes()).is_ok());
    }
}
