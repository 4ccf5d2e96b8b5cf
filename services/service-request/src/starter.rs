//! The platform's starter catalogue (`data/starter-catalogue.json`, proto3 JSON): services most
//! communes offer, with the deadlines the law sets (55-19 for acts and permits, 31-13 for
//! access to information), for a commune to import and adapt.

use jamaa_proto::servicerequest::v1::ServiceDefinition;

const STARTER_CATALOGUE: &str = include_str!("../data/starter-catalogue.json");

/// The starter catalogue's definitions.
pub fn starter_catalogue() -> Result<Vec<ServiceDefinition>, serde_json::Error> {
    serde_json::from_str(STARTER_CATALOGUE)
}

#[cfg(test)]
mod tests {
    use jamaa_server::status::FieldViolations;

    use super::*;
    use crate::definition::parse_definition;
    use crate::domain::ServiceCode;

    #[test]
    fn every_starter_service_is_a_valid_definition() {
        let services = starter_catalogue().expect("the starter catalogue parses");
        assert!(services.len() >= 8);
        for service in &services {
            assert!(
                ServiceCode::parse(&service.code).is_ok(),
                "{}",
                service.code
            );
            let mut violations = FieldViolations::new();
            assert!(
                parse_definition(service, &mut violations).is_some(),
                "{}: {:?}",
                service.code,
                violations.into_status()
            );
        }
    }
}
