//! The SOAP envelopes and answers, byte for byte.

use super::envelope::{query_envelope, update_envelope, zone_info_envelope};
use super::response::{Entity, parse_fault, parse_response, parse_zone_info};
use super::*;
use crate::target::autotask::tests::QUERY_ANSWER;
use crate::target::autotask::xml::{Element, parse};

fn queried() -> Entity {
    let response = parse_response(QUERY_ANSWER, "query", &Redactor::none()).unwrap();
    assert_eq!(response.return_code, 1);
    assert_eq!(response.entities.len(), 1);
    response.entities.into_iter().next().unwrap()
}

#[test]
fn a_query_answer_becomes_the_ordered_field_list() {
    let entity = queried();
    let names: Vec<&str> = entity.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "UserDefinedFields",
            "Active",
            "UserName",
            "FirstName",
            "LastName",
            "Email",
            "Title",
            "OfficePhone",
            "LicenseType",
            "UserType",
            "ResourceType",
            "DefaultServiceDeskRoleID",
            "Password"
        ]
    );
    assert_eq!(entity.field("id"), Some("29682885"));
    assert_eq!(entity.field("lastname"), Some("Optimize <365>"));
    assert_eq!(entity.field("Title"), Some(r#"R&D "lead" 'x'"#));
    assert_eq!(entity.namespaces, [("q1".to_owned(), "urn:example:types".to_owned())]);
}

#[test]
fn the_update_sends_every_queried_field_unchanged_plus_the_password_escaped() {
    let entity = queried();
    let password = SecretValue::new(r#"p<&"'>1#Ab"#);
    let envelope = update_envelope("CODE&<1>", &entity, &password);
    assert!(envelope.contains("&lt;&amp;&quot;&apos;&gt;1#Ab"), "the password is escaped");
    assert!(!envelope.contains(password.expose()), "the raw password never appears");
    assert!(envelope.contains("<IntegrationCode>CODE&amp;&lt;1&gt;</IntegrationCode>"));

    let root = parse(&envelope).unwrap();
    let update = root.child("Body").unwrap().child("update").unwrap();
    assert_eq!(update.attributes, [("xmlns".to_owned(), ATWS.to_owned())]);
    let sent = update.child("Entities").unwrap().child("Entity").unwrap();
    assert_eq!(sent.attributes[0], ("xsi:type".to_owned(), "Resource".to_owned()));
    assert!(sent.attributes.contains(&("xmlns:q1".to_owned(), "urn:example:types".to_owned())));
    let (password_fields, fields): (Vec<_>, Vec<_>) =
        sent.children.iter().partition(|f| f.local_name() == "Password");
    let queried: Vec<&Element> = entity.fields.iter().filter(|f| f.local_name() != "Password").collect();
    assert_eq!(fields.len(), queried.len(), "every queried field is sent");
    for (sent, queried) in fields.iter().zip(&queried) {
        assert_eq!(sent.name, queried.name);
        assert_eq!(sent.attributes, queried.attributes, "{}", sent.name);
        assert_eq!(sent.children, queried.children, "{}", sent.name);
        if queried.children.is_empty() {
            assert_eq!(sent.text, queried.text, "{}", sent.name);
        }
    }
    assert_eq!(password_fields.len(), 1, "the queried Password is replaced, not repeated");
    assert_eq!(password_fields[0].text, password.expose());
    assert!(password_fields[0].attributes.is_empty(), "the query's xsi:nil is not carried over");
    let position = |list: &[Element]| list.iter().position(|f| f.local_name() == "Password");
    assert_eq!(position(&sent.children), position(&entity.fields), "in the queried Password's slot");
}

/// The element names of the entity an update envelope sends.
fn sent_names(envelope: &str) -> Vec<String> {
    let root = parse(envelope).unwrap();
    let sent = root.find("Entity").unwrap();
    sent.children.iter().map(|f| f.local_name().to_owned()).collect()
}

/// A query answer as the real service gives it: WSDL order, `xsi:type` on each field, a masked `Password`.
const WSDL_ORDERED: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>
    <queryResponse xmlns="http://autotask.net/ATWS/v1_6/"><queryResult><EntityResults><Entity xsi:type="Resource">
    <id xsi:type="xsd:long">42</id><UserDefinedFields/><Active xsi:type="xsd:boolean">true</Active>
    <UserName xsi:type="xsd:string">a@x</UserName><DateFormat xsi:type="xsd:string">dd/MM/yyyy</DateFormat>
    <TimeFormat xsi:type="xsd:string">HH:mm</TimeFormat><Password xsi:type="xsd:string">******</Password>
    <PayrollType xsi:type="xsd:int">1</PayrollType><NumberFormat xsi:type="xsd:string">X</NumberFormat>
    <LicenseType xsi:type="xsd:int">7</LicenseType></Entity></EntityResults>
    <EntityResultType>resource</EntityResultType><Errors/><ReturnCode>1</ReturnCode></queryResult></queryResponse>
    </soap:Body></soap:Envelope>"#;

#[test]
fn the_password_goes_between_time_format_and_payroll_type_replacing_the_mask() {
    let entity = parse_response(WSDL_ORDERED, "query", &Redactor::none()).unwrap().entities.remove(0);
    let password = SecretValue::new("N3w!pass-word");
    let envelope = update_envelope("CODE", &entity, &password);
    let names = sent_names(&envelope);
    let at = names.iter().position(|n| n == "Password").unwrap();
    assert_eq!((names[at - 1].as_str(), names[at + 1].as_str()), ("TimeFormat", "PayrollType"), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "Password").count(), 1);
    assert!(!envelope.contains("******"), "the mask is never sent back as a password");
    assert!(envelope.contains("<Password>N3w!pass-word</Password>"));
}

#[test]
fn without_a_queried_password_it_goes_before_the_first_field_that_follows_it() {
    let answer = WSDL_ORDERED.replace(r#"<Password xsi:type="xsd:string">******</Password>"#, "");
    let entity = parse_response(&answer, "query", &Redactor::none()).unwrap().entities.remove(0);
    let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
    let at = names.iter().position(|n| n == "Password").unwrap();
    assert_eq!((names[at - 1].as_str(), names[at + 1].as_str()), ("TimeFormat", "PayrollType"), "{names:?}");

    let only_license = answer
        .replace(r#"<PayrollType xsi:type="xsd:int">1</PayrollType>"#, "")
        .replace(r#"<NumberFormat xsi:type="xsd:string">X</NumberFormat>"#, "");
    let entity = parse_response(&only_license, "query", &Redactor::none()).unwrap().entities.remove(0);
    let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
    assert_eq!(names[names.len() - 2..], ["Password", "LicenseType"], "{names:?}");

    let none_after = answer.replace(r#"<LicenseType xsi:type="xsd:int">7</LicenseType>"#, "");
    let none_after = none_after
        .replace(r#"<PayrollType xsi:type="xsd:int">1</PayrollType>"#, "")
        .replace(r#"<NumberFormat xsi:type="xsd:string">X</NumberFormat>"#, "");
    let entity = parse_response(&none_after, "query", &Redactor::none()).unwrap().entities.remove(0);
    let names = sent_names(&update_envelope("CODE", &entity, &SecretValue::new("N3w!pass-word")));
    assert_eq!(names.last().map(String::as_str), Some("Password"), "{names:?}");
}

#[test]
fn the_query_escapes_the_user_name_twice() {
    let user = r#"o'brien&<co>"@x.com"#;
    let envelope = query_envelope("CODE", user);
    let root = parse(&envelope).unwrap();
    let header = root.child("Header").unwrap().child("AutotaskIntegrations").unwrap();
    assert_eq!(header.child("IntegrationCode").unwrap().text, "CODE");
    let sxml = root.child("Body").unwrap().child("query").unwrap().child("sXML").unwrap();
    let query = parse(&sxml.text).unwrap();
    assert_eq!(query.child("entity").unwrap().text, "Resource");
    let field = query.child("query").unwrap().child("field").unwrap();
    assert_eq!(field.text.trim(), "UserName");
    let expression = field.child("expression").unwrap();
    assert_eq!(expression.attributes, [("op".to_owned(), "equals".to_owned())]);
    assert_eq!(expression.text, user);
}

#[test]
fn a_refused_update_yields_its_messages() {
    let answer = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
        <updateResponse xmlns="http://autotask.net/ATWS/v1_6/"><updateResult><EntityResults/>
        <EntityResultType>resource</EntityResultType>
        <Errors><ATWSError><Message>The password must contain a special character in positions 2-6.</Message></ATWSError>
        <ATWSError><Message>Second &amp; last</Message></ATWSError></Errors>
        <ReturnCode>-1</ReturnCode></updateResult></updateResponse></soap:Body></soap:Envelope>"#;
    let response = parse_response(answer, "update", &Redactor::none()).unwrap();
    assert_eq!(response.return_code, -1);
    assert_eq!(
        response.errors,
        ["The password must contain a special character in positions 2-6.", "Second & last"]
    );
    assert!(response.entities.is_empty());
    assert!(parse_response(answer, "query", &Redactor::none()).is_err(), "the operation is checked");
}

#[test]
fn get_zone_info_answers_are_read() {
    let answer = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
        <getZoneInfoResponse xmlns="http://autotask.net/ATWS/v1_6/"><getZoneInfoResult>
        <URL>https://webservices5.autotask.net/ATServices/1.6/atws.asmx</URL><ErrorCode>0</ErrorCode>
        <DataBaseType>Sandbox</DataBaseType><CI>1</CI><WebUrl>https://ww5.autotask.net/</WebUrl>
        </getZoneInfoResult></getZoneInfoResponse></soap:Body></soap:Envelope>"#;
    assert_eq!(
        parse_zone_info(answer).unwrap(),
        ZoneInfo { url: "https://webservices5.autotask.net/ATServices/1.6/atws.asmx".into(), error_code: 0 }
    );
    let unknown = answer
        .replace("https://webservices5.autotask.net/ATServices/1.6/atws.asmx", "")
        .replace("<ErrorCode>0</ErrorCode>", "<ErrorCode>-1</ErrorCode>");
    assert_eq!(parse_zone_info(&unknown).unwrap(), ZoneInfo { url: String::new(), error_code: -1 });
    let envelope = zone_info_envelope("a&b@x");
    let root = parse(&envelope).unwrap();
    assert!(root.child("Header").is_none(), "getZoneInfo carries no integration header");
    assert_eq!(root.find("UserName").unwrap().text, "a&b@x");
}

#[test]
fn faults_are_read() {
    let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>
        <faultcode>soap:Server</faultcode><faultstring>IntegrationCode is invalid.</faultstring>
        </soap:Fault></soap:Body></soap:Envelope>"#;
    assert_eq!(parse_fault(fault, &Redactor::none()).as_deref(), Some("IntegrationCode is invalid."));
    assert!(
        parse_response(fault, "query", &Redactor::none())
            .unwrap_err()
            .contains("IntegrationCode is invalid.")
    );
    assert_eq!(parse_fault("<html>502</html>", &Redactor::none()), None);
}

#[test]
fn permission_refusals_are_told_from_password_refusals() {
    for text in [
        "Resource update() requires System Administrator level access.",
        "You do not have permission to update Resource.",
        "User is not authorized to perform this operation",
    ] {
        assert!(is_permission_text(&text.to_ascii_lowercase()), "{text}");
    }
    for text in [
        "The password must be at least 7 characters long.",
        "Spaces are not allowed in passwords.",
        "The new password must differ from the last 5 passwords.",
        "The password must contain a special character in positions 2-6.",
    ] {
        assert!(!is_permission_text(&text.to_ascii_lowercase()), "{text}");
    }
}
