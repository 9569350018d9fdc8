//! The REST query body (`{"filter":[…],"includeFields":[…],"maxRecords":N}`) and its evaluation on resources.
//! The wire page asks for at least `eq`; the sandbox also knows Autotask's other comparison operators and
//! `and`/`or` groups, so a client using them is not refused for the sandbox's sake. Field names and operators
//! are matched without regard to case; string values exactly.

use super::fields::{Field, Kind, Record};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Autotask's page size, and the most `maxRecords` may ask for.
pub(crate) const PAGE: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        let ops = [
            ("eq", Op::Eq),
            ("noteq", Op::NotEq),
            ("gt", Op::Gt),
            ("gte", Op::Gte),
            ("lt", Op::Lt),
            ("lte", Op::Lte),
            ("beginswith", Op::BeginsWith),
            ("endswith", Op::EndsWith),
            ("contains", Op::Contains),
            ("exist", Op::Exist),
            ("notexist", Op::NotExist),
            ("in", Op::In),
            ("notin", Op::NotIn),
        ];
        ops.into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, op)| op)
    }
}

#[derive(Debug)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Test { op: Op, field: Field, value: Value },
}

/// A parsed query.
#[derive(Debug)]
pub(crate) struct Query {
    filter: Expr,
    include: Option<Vec<Field>>,
    pub(crate) max_records: usize,
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

impl Query {
    /// Parses a query body; `Err` is the message of Autotask's 500 answer.
    pub(crate) fn parse(body: &Value) -> Result<Query, String> {
        let object = body.as_object().ok_or("The query must be a JSON object.")?;
        let filter = match get_ci(object, "filter") {
            Some(Value::Array(items)) if !items.is_empty() => Expr::All(parse_items(items)?),
            _ => return Err("The query must contain a filter with at least one condition.".to_string()),
        };
        let include = match get_ci(object, "includeFields") {
            None | Some(Value::Null) => None,
            Some(Value::Array(names)) if names.is_empty() => None,
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .and_then(Field::from_rest)
                            .ok_or_else(|| format!("includeFields: unknown field {n}."))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err("includeFields must be an array of field names.".to_string()),
        };
        let max_records = match get_ci(object, "maxRecords") {
            None | Some(Value::Null) => PAGE,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=500) => n as usize,
                _ => return Err("maxRecords must be between 1 and 500.".to_string()),
            },
        };
        Ok(Query { filter, include, max_records })
    }

    pub(crate) fn include(&self) -> Option<&[Field]> {
        self.include.as_deref()
    }

    pub(crate) fn matches(&self, record: &Record) -> bool {
        self.filter.holds(record)
    }
}

fn parse_items(items: &[Value]) -> Result<Vec<Expr>, String> {
    items.iter().map(parse_item).collect()
}

fn parse_item(item: &Value) -> Result<Expr, String> {
    let object = item.as_object().ok_or("Each filter condition must be an object.")?;
    let op = get_ci(object, "op").and_then(Value::as_str).ok_or("Each filter condition needs an op.")?;
    if op.eq_ignore_ascii_case("and") || op.eq_ignore_ascii_case("or") {
        let items = match get_ci(object, "items") {
            Some(Value::Array(items)) if !items.is_empty() => parse_items(items)?,
            _ => return Err(format!("The {op} group needs items.")),
        };
        return Ok(if op.eq_ignore_ascii_case("and") { Expr::All(items) } else { Expr::Any(items) });
    }
    let op_kind = Op::parse(op).ok_or_else(|| format!("Unknown filter operator {op}."))?;
    let name =
        get_ci(object, "field").and_then(Value::as_str).ok_or("Each filter condition needs a field.")?;
    let field = Field::from_rest(name).ok_or_else(|| format!("Unknown field {name}."))?;
    let raw = get_ci(object, "value").cloned().unwrap_or(Value::Null);
    let value = match op_kind {
        Op::Exist | Op::NotExist => Value::Null,
        Op::In | Op::NotIn => match raw {
            Value::Array(values) => {
                Value::Array(values.iter().map(|v| coerce(field, v)).collect::<Result<_, _>>()?)
            }
            _ => return Err(format!("The {op} operator needs an array value.")),
        },
        _ => coerce(field, &raw)?,
    };
    Ok(Expr::Test { op: op_kind, field, value })
}

/// A filter value as the field's type: integers may come as numeric strings; booleans must be JSON literals and
/// null is never a value (the reference's §4).
fn coerce(field: Field, value: &Value) -> Result<Value, String> {
    let bad = || Err(format!("Invalid filter value for field {}.", field.rest()));
    match (field.kind(), value) {
        (_, Value::Null) => bad(),
        (Kind::Int, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (Kind::Int, Value::String(s)) => s.trim().parse::<i64>().map(Value::from).or_else(|_| bad()),
        (Kind::Text, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => Ok(value.clone()),
        _ => bad(),
    }
}

fn compare(actual: &Value, wanted: &Value) -> Option<Ordering> {
    match (actual, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_i64().zip(b.as_i64()).map(|(a, b)| a.cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Expr {
    fn holds(&self, record: &Record) -> bool {
        let Expr::Test { op, field, value } = self else {
            return match self {
                Expr::All(items) => items.iter().all(|e| e.holds(record)),
                Expr::Any(items) => items.iter().any(|e| e.holds(record)),
                Expr::Test { .. } => false,
            };
        };
        let actual = record.get(*field);
        let ordering = compare(&actual, value);
        let text = || actual.as_str().zip(value.as_str());
        let listed = || {
            value.as_array().is_some_and(|l| l.iter().any(|v| compare(&actual, v) == Some(Ordering::Equal)))
        };
        match op {
            Op::Eq => ordering == Some(Ordering::Equal),
            Op::NotEq => ordering != Some(Ordering::Equal),
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Gte => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Lte => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Op::BeginsWith => text().is_some_and(|(a, b)| a.starts_with(b)),
            Op::EndsWith => text().is_some_and(|(a, b)| a.ends_with(b)),
            Op::Contains => text().is_some_and(|(a, b)| a.contains(b)),
            Op::Exist => !actual.is_null(),
            Op::NotExist => actual.is_null(),
            Op::In => listed(),
            Op::NotIn => !listed(),
        }
    }
}
