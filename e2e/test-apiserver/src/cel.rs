//! A small CEL interpreter for `x-kubernetes-validations` rules.
//!
//! Supports literals, `self`/`oldSelf`, field access, indexing, `has()`, arithmetic, comparison, logic,
//! the ternary operator, `in`, `size()`, string methods (`startsWith`, `endsWith`, `contains`, `matches`)
//! and the macros `all`, `exists`, `exists_one`, `map`, `filter`. Anything else yields
//! [`CelError::Unsupported`], which the validator treats as "rule passes".

use std::collections::HashMap;

use serde_json::{json, Value};

/// Why a rule could not be evaluated to a boolean.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CelError {
    /// Syntax or function outside the supported subset.
    #[error("unsupported CEL: {0}")]
    Unsupported(String),
    /// A transition rule (uses `oldSelf`) evaluated without an old object.
    #[error("transition rule without oldSelf")]
    NoOldSelf,
    /// Runtime error (e.g. `no such key`), which fails the rule like in kube-apiserver.
    #[error("{0}")]
    Eval(String),
}

type R<T> = Result<T, CelError>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> R<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = vec![];
    const OPS: &[&str] = &[
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".",
        ",", "(", ")", "[", "]", "{", "}",
    ];
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit() {
            let st = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            let t: String = c[st..i].iter().collect();
            if i < c.len() && (c[i] == 'u' || c[i] == 'U') {
                i += 1;
            }
            out.push(if t.contains('.') {
                Tok::Float(t.parse().map_err(|_| CelError::Unsupported(t.clone()))?)
            } else {
                Tok::Int(t.parse().map_err(|_| CelError::Unsupported(t.clone()))?)
            });
        } else if ch == '"' || ch == '\'' {
            i += 1;
            let mut t = String::new();
            while i < c.len() && c[i] != ch {
                if c[i] == '\\' && i + 1 < c.len() {
                    i += 1;
                    t.push(match c[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    t.push(c[i]);
                }
                i += 1;
            }
            if i >= c.len() {
                return Err(CelError::Unsupported("unterminated string".into()));
            }
            i += 1;
            out.push(Tok::Str(t));
        } else if ch.is_alphabetic() || ch == '_' {
            let st = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[st..i].iter().collect()));
        } else {
            let rest: String = c[i..c.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|o| rest.starts_with(**o))
                .ok_or_else(|| CelError::Unsupported(format!("char {ch}")))?;
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Var(String),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Has(Box<Expr>, String),
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    Macro(Box<Expr>, String, String, Box<Expr>),
    Unary(&'static str, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
}

struct Parser {
    t: Vec<Tok>,
    p: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.p)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.p += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) -> R<()> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(CelError::Unsupported(format!("expected {op}")))
        }
    }
    fn expr(&mut self) -> R<Expr> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }
    fn binary(&mut self, level: usize) -> R<Expr> {
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["==", "!=", "<", "<=", ">", ">=", "in"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level >= LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(o)) if LEVELS[level].contains(o) => *o,
                Some(Tok::Ident(i)) if i == "in" && level == 2 => "in",
                _ => break,
            };
            self.p += 1;
            let rhs = self.binary(level + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn unary(&mut self) -> R<Expr> {
        if self.eat("!") {
            return Ok(Expr::Unary("!", Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Unary("-", Box::new(self.unary()?)));
        }
        self.member()
    }
    fn args(&mut self) -> R<Vec<Expr>> {
        let mut a = vec![];
        if self.eat(")") {
            return Ok(a);
        }
        loop {
            a.push(self.expr()?);
            if self.eat(")") {
                return Ok(a);
            }
            self.expect(",")?;
        }
    }
    fn member(&mut self) -> R<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let name = match self.peek().cloned() {
                    Some(Tok::Ident(n)) => n,
                    _ => return Err(CelError::Unsupported("field name".into())),
                };
                self.p += 1;
                if self.eat("(") {
                    let args = self.args()?;
                    if ["all", "exists", "exists_one", "map", "filter"].contains(&name.as_str()) {
                        let (var, body) = match args.as_slice() {
                            [Expr::Var(v), body] => (v.clone(), body.clone()),
                            _ => return Err(CelError::Unsupported(format!("macro {name}"))),
                        };
                        e = Expr::Macro(Box::new(e), name, var, Box::new(body));
                    } else {
                        e = Expr::Call(Some(Box::new(e)), name, args);
                    }
                } else {
                    e = Expr::Field(Box::new(e), name);
                }
            } else if self.eat("[") {
                let idx = self.expr()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> R<Expr> {
        let t = self
            .peek()
            .cloned()
            .ok_or_else(|| CelError::Unsupported("unexpected end".into()))?;
        self.p += 1;
        match t {
            Tok::Int(i) => Ok(Expr::Lit(json!(i))),
            Tok::Float(f) => Ok(Expr::Lit(json!(f))),
            Tok::Str(s) => Ok(Expr::Lit(json!(s))),
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op("[") => {
                let mut items = vec![];
                if !self.eat("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(json!(true))),
                "false" => Ok(Expr::Lit(json!(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "has" => {
                    self.expect("(")?;
                    let arg = self.member()?;
                    self.expect(")")?;
                    match arg {
                        Expr::Field(base, f) => Ok(Expr::Has(base, f)),
                        _ => Err(CelError::Unsupported("has() argument".into())),
                    }
                }
                _ if self.eat("(") => Ok(Expr::Call(None, id, self.args()?)),
                _ => Ok(Expr::Var(id)),
            },
            other => Err(CelError::Unsupported(format!("token {other:?}"))),
        }
    }
}

fn parse(rule: &str) -> R<Expr> {
    let mut p = Parser {
        t: tokenize(rule)?,
        p: 0,
    };
    let e = p.expr()?;
    if p.p != p.t.len() {
        return Err(CelError::Unsupported("trailing tokens".into()));
    }
    Ok(e)
}

fn uses_old_self(e: &Expr) -> bool {
    match e {
        Expr::Var(v) => v == "oldSelf",
        Expr::Lit(_) => false,
        Expr::Field(b, _) | Expr::Has(b, _) | Expr::Unary(_, b) => uses_old_self(b),
        Expr::Index(a, b) | Expr::Bin(_, a, b) => uses_old_self(a) || uses_old_self(b),
        Expr::Macro(a, _, _, b) => uses_old_self(a) || uses_old_self(b),
        Expr::Cond(a, b, c) => uses_old_self(a) || uses_old_self(b) || uses_old_self(c),
        Expr::Call(t, _, args) => {
            t.as_ref().is_some_and(|t| uses_old_self(t)) || args.iter().any(uses_old_self)
        }
        Expr::List(items) => items.iter().any(uses_old_self),
    }
}

fn unsupported<T>(what: impl Into<String>) -> R<T> {
    Err(CelError::Unsupported(what.into()))
}

fn truthy(v: &Value) -> R<bool> {
    v.as_bool()
        .ok_or_else(|| CelError::Unsupported(format!("expected bool, got {v}")))
}

fn as_num(v: &Value) -> R<f64> {
    v.as_f64()
        .ok_or_else(|| CelError::Unsupported(format!("expected number, got {v}")))
}

fn num_result(f: f64, ints: bool) -> Value {
    if ints {
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn eval(e: &Expr, env: &HashMap<String, Value>) -> R<Value> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Var(v) => env
            .get(v)
            .cloned()
            .ok_or_else(|| CelError::Unsupported(format!("variable {v}")))?,
        Expr::Field(b, f) => {
            let base = eval(b, env)?;
            match base {
                Value::Object(m) => m
                    .get(f)
                    .cloned()
                    .ok_or_else(|| CelError::Eval(format!("no such key: {f}")))?,
                _ => return unsupported("field access on non-object"),
            }
        }
        Expr::Has(b, f) => match eval(b, env)? {
            Value::Object(m) => json!(m.contains_key(f)),
            _ => return unsupported("has() on non-object"),
        },
        Expr::Index(b, i) => {
            let base = eval(b, env)?;
            let idx = eval(i, env)?;
            match (&base, &idx) {
                (Value::Array(a), Value::Number(n)) => {
                    let i = n
                        .as_u64()
                        .ok_or_else(|| CelError::Eval("index out of range".into()))?
                        as usize;
                    a.get(i)
                        .cloned()
                        .ok_or_else(|| CelError::Eval(format!("index out of range: {i}")))?
                }
                (Value::Object(m), Value::String(k)) => m
                    .get(k)
                    .cloned()
                    .ok_or_else(|| CelError::Eval(format!("no such key: {k}")))?,
                _ => return unsupported("index"),
            }
        }
        Expr::List(items) => Value::Array(items.iter().map(|x| eval(x, env)).collect::<R<_>>()?),
        Expr::Unary("!", x) => json!(!truthy(&eval(x, env)?)?),
        Expr::Unary(_, x) => {
            let v = eval(x, env)?;
            num_result(-as_num(&v)?, v.is_i64())
        }
        Expr::Cond(c, a, b) => {
            if truthy(&eval(c, env)?)? {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Expr::Bin("&&", a, b) => {
            // CEL's commutative logic: false wins even over errors.
            let l = eval(a, env).and_then(|v| truthy(&v));
            if l == Ok(false) {
                return Ok(json!(false));
            }
            let r = eval(b, env).and_then(|v| truthy(&v));
            match (l, r) {
                (_, Ok(false)) => json!(false),
                (Ok(true), Ok(true)) => json!(true),
                (Err(e), _) | (_, Err(e)) => return Err(e),
                _ => json!(false),
            }
        }
        Expr::Bin("||", a, b) => {
            let l = eval(a, env).and_then(|v| truthy(&v));
            if l == Ok(true) {
                return Ok(json!(true));
            }
            let r = eval(b, env).and_then(|v| truthy(&v));
            match (l, r) {
                (_, Ok(true)) => json!(true),
                (Ok(false), Ok(false)) => json!(false),
                (Err(e), _) | (_, Err(e)) => return Err(e),
                _ => json!(true),
            }
        }
        Expr::Bin(op, a, b) => {
            let l = eval(a, env)?;
            let r = eval(b, env)?;
            binop(op, &l, &r)?
        }
        Expr::Macro(target, name, var, body) => {
            let items: Vec<Value> = match eval(target, env)? {
                Value::Array(a) => a,
                Value::Object(m) => m.keys().map(|k| json!(k)).collect(),
                _ => return unsupported("macro target"),
            };
            let mut env2 = env.clone();
            let mut results = Vec::with_capacity(items.len());
            for it in &items {
                env2.insert(var.clone(), it.clone());
                results.push(eval(body, &env2)?);
            }
            match name.as_str() {
                "all" => json!(results
                    .iter()
                    .map(truthy)
                    .collect::<R<Vec<_>>>()?
                    .into_iter()
                    .all(|b| b)),
                "exists" => json!(results
                    .iter()
                    .map(truthy)
                    .collect::<R<Vec<_>>>()?
                    .into_iter()
                    .any(|b| b)),
                "exists_one" => json!(
                    results
                        .iter()
                        .map(truthy)
                        .collect::<R<Vec<_>>>()?
                        .into_iter()
                        .filter(|b| *b)
                        .count()
                        == 1
                ),
                "map" => Value::Array(results),
                _ => {
                    let mut out = vec![];
                    for (it, keep) in items.into_iter().zip(results) {
                        if truthy(&keep)? {
                            out.push(it);
                        }
                    }
                    Value::Array(out)
                }
            }
        }
        Expr::Call(target, name, args) => {
            let mut vals = vec![];
            if let Some(t) = target {
                vals.push(eval(t, env)?);
            }
            for a in args {
                vals.push(eval(a, env)?);
            }
            call(name, &vals)?
        }
    })
}

fn binop(op: &str, l: &Value, r: &Value) -> R<Value> {
    Ok(match op {
        "==" => json!(values_eq(l, r)),
        "!=" => json!(!values_eq(l, r)),
        "in" => match r {
            Value::Array(a) => json!(a.iter().any(|x| values_eq(x, l))),
            Value::Object(m) => json!(l.as_str().is_some_and(|k| m.contains_key(k))),
            _ => return unsupported("in"),
        },
        "<" | "<=" | ">" | ">=" => {
            let ord = match (l, r) {
                (Value::String(a), Value::String(b)) => a.cmp(b),
                _ => as_num(l)?
                    .partial_cmp(&as_num(r)?)
                    .ok_or_else(|| CelError::Unsupported("NaN".into()))?,
            };
            json!(match op {
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "+" => match (l, r) {
            (Value::String(a), Value::String(b)) => json!(format!("{a}{b}")),
            (Value::Array(a), Value::Array(b)) => {
                Value::Array(a.iter().chain(b).cloned().collect())
            }
            _ => num_result(as_num(l)? + as_num(r)?, l.is_i64() && r.is_i64()),
        },
        "-" => num_result(as_num(l)? - as_num(r)?, l.is_i64() && r.is_i64()),
        "*" => num_result(as_num(l)? * as_num(r)?, l.is_i64() && r.is_i64()),
        "/" | "%" => {
            let d = as_num(r)?;
            if d == 0.0 {
                return Err(CelError::Eval("division by zero".into()));
            }
            let ints = l.is_i64() && r.is_i64();
            if op == "/" {
                num_result(
                    if ints {
                        (as_num(l)? / d).trunc()
                    } else {
                        as_num(l)? / d
                    },
                    ints,
                )
            } else {
                num_result(as_num(l)? % d, ints)
            }
        }
        _ => return unsupported(op.to_string()),
    })
}

fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn call(name: &str, v: &[Value]) -> R<Value> {
    let s = |i: usize| {
        v.get(i)
            .and_then(Value::as_str)
            .ok_or_else(|| CelError::Unsupported(format!("{name} args")))
    };
    Ok(match (name, v.len()) {
        ("size", 1) => json!(match &v[0] {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            _ => return unsupported("size"),
        }),
        ("startsWith", 2) => json!(s(0)?.starts_with(s(1)?)),
        ("endsWith", 2) => json!(s(0)?.ends_with(s(1)?)),
        ("contains", 2) => json!(s(0)?.contains(s(1)?)),
        ("matches", 2) => {
            let re = regex::Regex::new(s(1)?).map_err(|e| CelError::Unsupported(e.to_string()))?;
            json!(re.is_match(s(0)?))
        }
        ("lowerAscii", 1) => json!(s(0)?.to_ascii_lowercase()),
        ("upperAscii", 1) => json!(s(0)?.to_ascii_uppercase()),
        ("string", 1) => json!(crate::util::scalar_string(&v[0])),
        ("int", 1) => match &v[0] {
            Value::String(x) => json!(x
                .parse::<i64>()
                .map_err(|e| CelError::Eval(e.to_string()))?),
            other => json!(as_num(other)?.trunc() as i64),
        },
        _ => return unsupported(format!("function {name}")),
    })
}

/// Evaluate a validation rule against `self` (and `oldSelf` for transition rules).
pub fn evaluate(rule: &str, self_: &Value, old_self: Option<&Value>) -> Result<bool, CelError> {
    let e = parse(rule)?;
    let mut env = HashMap::new();
    env.insert("self".to_string(), self_.clone());
    if uses_old_self(&e) {
        match old_self {
            Some(o) => {
                env.insert("oldSelf".to_string(), o.clone());
            }
            None => return Err(CelError::NoOldSelf),
        }
    }
    match eval(&e, &env)? {
        Value::Bool(b) => Ok(b),
        other => Err(CelError::Unsupported(format!(
            "rule evaluated to non-bool {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_forms() {
        let a = json!({"a": 1});
        let ab = json!({"a": 1, "b": 2});
        let none = json!({});
        let r1 = "has(self.a) ? !has(self.b) : has(self.b)";
        let r2 = "[has(self.a), has(self.b)].filter(x, x).size() == 1";
        let r3 = "(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) == 1";
        for r in [r1, r2, r3] {
            assert_eq!(evaluate(r, &a, None), Ok(true), "{r}");
            assert_eq!(evaluate(r, &ab, None), Ok(false), "{r}");
            assert_eq!(evaluate(r, &none, None), Ok(false), "{r}");
        }
    }

    #[test]
    fn operators_and_functions() {
        let v = json!({"name": "web-1", "n": 3, "items": [1, 2, 3], "m": {"k": "v"}});
        for (rule, want) in [
            ("self.name.startsWith('web') && self.n >= 3", true),
            ("size(self.name) == 5 && self.name.size() < 6", true),
            (
                "self.items.all(i, i > 0) && self.items.exists(i, i == 2)",
                true,
            ),
            ("self.items.exists_one(i, i > 1)", false),
            ("self.items.map(i, i * 2)[2] == 6", true),
            ("'k' in self.m && self.m['k'] == 'v'", true),
            ("self.name.matches('^web-[0-9]+$')", true),
            ("self.n % 2 == 1 && self.n / 2 == 1", true),
            ("!(self.n > 5) || self.missing == 1", true),
        ] {
            assert_eq!(evaluate(rule, &v, None), Ok(want), "{rule}");
        }
        assert!(matches!(
            evaluate("self.missing == 1", &v, None),
            Err(CelError::Eval(_))
        ));
        assert!(matches!(
            evaluate("self.name.quantity()", &v, None),
            Err(CelError::Unsupported(_))
        ));
        assert_eq!(
            evaluate("self == oldSelf", &v, None),
            Err(CelError::NoOldSelf)
        );
        assert_eq!(
            evaluate("self == oldSelf", &json!("a"), Some(&json!("a"))),
            Ok(true)
        );
    }
}
