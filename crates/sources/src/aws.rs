//! AWS Signature Version 4 (providers.md §3): how a Cost Explorer or STS request is signed with
//! an access key, its secret and, for temporary credentials, a session token. The signing itself
//! is AWS's own `aws-sigv4`; this module fixes what burnrate signs (every header it sends, the body
//! hashed, no payload-hash header) and keeps the secret inside.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use secrecy::{ExposeSecret, SecretString};

/// Credentials for AWS: an access key id (`AKIA…`, or `ASIA…` with a session token).
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// What is signed: a request as it will be sent.
pub struct AwsRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Every header the request carries besides those the signature adds.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub region: &'a str,
    /// The signing name of the service (`ce` for Cost Explorer, `sts`).
    pub service: &'a str,
}

/// The headers to add to `request` so AWS accepts it at `at`: `authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary credentials. `Err` says what could not be signed (never
/// with the secret).
pub fn sign_request(
    credentials: &AwsCredentials,
    request: &AwsRequest<'_>,
    at: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose_secret().to_owned(),
        credentials.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
        None,
        "burnrate-source",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(request.service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| format!("request to sign: {e}"))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The credentials and instant of AWS's published SigV4 test suite.
    fn suite() -> (AwsCredentials, SystemTime) {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        // 2015-08-30T12:36:00Z
        (credentials, UNIX_EPOCH + Duration::from_secs(1_440_938_160))
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn signatures_match_the_aws_test_suite() {
        let (credentials, at) = suite();
        for (name, method, url, signature) in [
            (
                "get-vanilla",
                "GET",
                "https://example.amazonaws.com/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "post-vanilla",
                "POST",
                "https://example.amazonaws.com/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "get-vanilla-query-order-key-case",
                "GET",
                "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            let request = AwsRequest {
                method,
                url,
                headers: &[("host", "example.amazonaws.com")],
                body: b"",
                region: "us-east-1",
                service: "service",
            };
            let headers = sign_request(&credentials, &request, at).unwrap();
            assert_eq!(
                authorization(&headers),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature={signature}"
                ),
                "{name}"
            );
            assert!(headers.iter().any(|(k, v)| k == "x-amz-date" && v == "20150830T123600Z"), "{name}: {headers:?}");
        }
    }

    #[test]
    fn temporary_credentials_send_their_token_under_the_signature() {
        let (mut credentials, at) = suite();
        credentials.session_token = Some(SecretString::from("FQoGZXIvYXdzEXAMPLETOKEN"));
        let request = AwsRequest {
            method: "POST",
            url: "https://ce.us-east-1.amazonaws.com/",
            headers: &[
                ("host", "ce.us-east-1.amazonaws.com"),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "AWSInsightsIndexService.GetCostAndUsage"),
            ],
            body: br#"{"Granularity":"DAILY"}"#,
            region: "us-east-1",
            service: "ce",
        };
        let headers = sign_request(&credentials, &request, at).unwrap();
        assert!(headers.iter().any(|(k, v)| k == "x-amz-security-token" && v == "FQoGZXIvYXdzEXAMPLETOKEN"));
        let auth = authorization(&headers);
        assert!(
            auth.contains("/20150830/us-east-1/ce/aws4_request")
                && auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"),
            "{auth}"
        );
        assert!(!auth.contains("wJalrXUtnFEMI"), "the secret never appears");
    }
}
