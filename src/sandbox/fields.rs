//! The fields of an Autotask `Resource` as the sandbox keeps them, with their names on each wire: camelCase on
//! REST, the SOAP 1.6 element names on SOAP (docs/autotask-wire.md). One table serves both APIs, so they cannot
//! drift apart; the password is not a field here, because neither API ever returns it.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One field of a `Resource`, in the order both APIs list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Field {
    Id,
    UserName,
    FirstName,
    LastName,
    Email,
    IsActive,
    LicenseType,
    UserType,
    ResourceType,
    Title,
    OfficePhone,
    MobilePhone,
    DefaultServiceDeskRoleId,
}

/// The element order of a SOAP 1.6 `Resource`, as the WSDL's `xs:sequence` fixes it: the base `Entity`'s
/// (`Fields`, `id`, `UserDefinedFields`), then Resource's own. The real service answers a `query` in this order, and
/// a reader that follows the schema strictly drops an element that comes after one it should precede.
pub(crate) const SOAP_SEQUENCE: [&str; 38] = [
    "Fields",
    "id",
    "UserDefinedFields",
    "Active",
    "Email",
    "Email2",
    "Email3",
    "EmailTypeCode",
    "EmailTypeCode2",
    "EmailTypeCode3",
    "FirstName",
    "Gender",
    "Greeting",
    "HomePhone",
    "Initials",
    "LastName",
    "LocationID",
    "MiddleName",
    "MobilePhone",
    "OfficeExtension",
    "OfficePhone",
    "ResourceType",
    "Suffix",
    "Title",
    "TravelAvailabilityPct",
    "UserName",
    "UserType",
    "DefaultServiceDeskRoleID",
    "DateFormat",
    "TimeFormat",
    "Password",
    "PayrollType",
    "NumberFormat",
    "AccountingReferenceID",
    "InternalCost",
    "HireDate",
    "SurveyResourceRating",
    "LicenseType",
];

/// Where a SOAP element belongs in [`SOAP_SEQUENCE`] (names compared exactly, as the serializer does).
pub(crate) fn soap_position(name: &str) -> Option<usize> {
    SOAP_SEQUENCE.iter().position(|n| *n == name)
}

/// The value type of a field on both wires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bool,
}

impl Field {
    pub(crate) const ALL: [Field; 13] = [
        Field::Id,
        Field::UserName,
        Field::FirstName,
        Field::LastName,
        Field::Email,
        Field::IsActive,
        Field::LicenseType,
        Field::UserType,
        Field::ResourceType,
        Field::Title,
        Field::OfficePhone,
        Field::MobilePhone,
        Field::DefaultServiceDeskRoleId,
    ];

    /// (REST name, SOAP name, kind).
    fn spec(self) -> (&'static str, &'static str, Kind) {
        match self {
            Field::Id => ("id", "id", Kind::Int),
            Field::UserName => ("userName", "UserName", Kind::Text),
            Field::FirstName => ("firstName", "FirstName", Kind::Text),
            Field::LastName => ("lastName", "LastName", Kind::Text),
            Field::Email => ("email", "Email", Kind::Text),
            Field::IsActive => ("isActive", "Active", Kind::Bool),
            Field::LicenseType => ("licenseType", "LicenseType", Kind::Int),
            Field::UserType => ("userType", "UserType", Kind::Int),
            Field::ResourceType => ("resourceType", "ResourceType", Kind::Text),
            Field::Title => ("title", "Title", Kind::Text),
            Field::OfficePhone => ("officePhone", "OfficePhone", Kind::Text),
            Field::MobilePhone => ("mobilePhone", "MobilePhone", Kind::Text),
            Field::DefaultServiceDeskRoleId => {
                ("defaultServiceDeskRoleID", "DefaultServiceDeskRoleID", Kind::Int)
            }
        }
    }

    pub(crate) fn rest(self) -> &'static str {
        self.spec().0
    }

    pub(crate) fn soap(self) -> &'static str {
        self.spec().1
    }

    pub(crate) fn kind(self) -> Kind {
        self.spec().2
    }

    /// The `xsi:type` the SOAP service writes on this field.
    pub(crate) fn xsd_type(self) -> &'static str {
        match (self, self.kind()) {
            (Field::Id, _) => "xsd:long",
            (_, Kind::Int) => "xsd:int",
            (_, Kind::Text) => "xsd:string",
            (_, Kind::Bool) => "xsd:boolean",
        }
    }

    /// Every field but `id` is writable: that is what makes PUT and SOAP `update` clear the fields not sent.
    /// *(choice: the wire page does not say which fields are read-only.)*
    pub(crate) fn writable(self) -> bool {
        self != Field::Id
    }

    /// REST names are matched without regard to case, as Autotask's JSON binding and filters do.
    pub(crate) fn from_rest(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.rest().eq_ignore_ascii_case(name))
    }

    /// SOAP element names are matched exactly, as the .NET XML serializer behind ATWS does; `case_blind` is for
    /// the field names inside a query XML, which Autotask compares without regard to case.
    pub(crate) fn from_soap(name: &str, case_blind: bool) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| if case_blind { f.soap().eq_ignore_ascii_case(name) } else { f.soap() == name })
    }

    /// Checks a JSON value sent over REST for this field.
    pub(crate) fn rest_value(self, value: &Value) -> Result<Value, String> {
        let ok = match (self.kind(), value) {
            (_, Value::Null) => true,
            (Kind::Int, Value::Number(n)) => n.is_i64(),
            (Kind::Text, Value::String(_)) => true,
            (Kind::Bool, Value::Bool(_)) => true,
            _ => false,
        };
        if ok { Ok(value.clone()) } else { Err(format!("Invalid value for field {}.", self.rest())) }
    }

    /// Reads the text of a SOAP element for this field (`None` is `xsi:nil`).
    pub(crate) fn soap_value(self, text: Option<&str>) -> Result<Value, String> {
        let Some(text) = text else { return Ok(Value::Null) };
        match self.kind() {
            Kind::Text => Ok(Value::String(text.to_string())),
            // An empty element for a typed field reads as "no value"; anything else must parse.
            _ if text.trim().is_empty() => Ok(Value::Null),
            Kind::Int => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("Invalid value for field {}: expected an integer.", self.soap())),
            Kind::Bool => match text.trim() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(format!("Invalid value for field {}: expected true or false.", self.soap())),
            },
        }
    }
}

/// The text of a non-null value as SOAP writes it (booleans `true`/`false`).
pub(crate) fn soap_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A resource's fields. `id` is kept apart because it never changes; a field that is absent is null.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    id: i64,
    values: BTreeMap<Field, Value>,
}

impl Record {
    pub(crate) fn new(id: i64) -> Record {
        Record { id, values: BTreeMap::new() }
    }

    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn get(&self, field: Field) -> Value {
        match field {
            Field::Id => Value::from(self.id),
            other => self.values.get(&other).cloned().unwrap_or(Value::Null),
        }
    }

    pub(crate) fn set(&mut self, field: Field, value: Value) {
        if field == Field::Id {
            return;
        }
        if value.is_null() {
            self.values.remove(&field);
        } else {
            self.values.insert(field, value);
        }
    }

    pub(crate) fn user_name(&self) -> Option<&str> {
        self.values.get(&Field::UserName).and_then(Value::as_str)
    }

    /// The same record with every writable field cleared: the start of a PUT or a SOAP `update`.
    pub(crate) fn cleared(&self) -> Record {
        Record::new(self.id)
    }

    /// The REST shape: every field (nulls included), or only `only` plus `id`.
    pub(crate) fn to_rest(&self, only: Option<&[Field]>) -> Value {
        let mut map = Map::new();
        for field in Field::ALL {
            if field == Field::Id || only.is_none_or(|o| o.contains(&field)) {
                map.insert(field.rest().to_string(), self.get(field));
            }
        }
        Value::Object(map)
    }
}
