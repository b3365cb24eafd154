use std::collections::BTreeMap;

use burnrate_core::RequestRecord;
use chrono::{TimeZone, Utc};

use super::*;

const PROMPT: &str = "burnrate-secret-prompt";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn read_fixture(name: &str, tags: &TagAttributes) -> Reading {
    let encoding = if name.contains(".pb") { Encoding::Protobuf } else { Encoding::Json };
    let bytes = fixture(name);
    let request = decode(Body { encoding, gzip: name.ends_with(".gz"), bytes: &bytes }).expect(name);
    read(&request, tags)
}

fn key(trace: &str, span: &str) -> SpanKey {
    let hex =
        |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<_>>();
    SpanKey { trace_id: hex(trace).try_into().unwrap(), span_id: hex(span).try_into().unwrap() }
}

/// The three calls every fixture describes, as burnrate stores them.
fn expected() -> Vec<RequestRecord> {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let (ta, tb) = ("5b8efff798038103d269b633813fc60c", "0af7651916cd43dd8448eb211c80319c");
    let some = |s: &str| Some(s.to_owned());
    let base = RequestRecord {
        service: some("checkout"),
        team: some("payments"),
        operation: some("chat"),
        ..RequestRecord::default()
    };
    vec![
        RequestRecord {
            key: key(ta, "eee19b7ec3c1b174"),
            started_at: at(0),
            ended_at: at(0) + chrono::Duration::milliseconds(1500),
            gen_ai_provider: some("openai"),
            request_model: some("gpt-4o"),
            model: some("gpt-4o-2024-08-06"),
            // 1,200 input of which 1,000 read from the cache.
            input_uncached_tokens: 200,
            input_cached_tokens: 1000,
            output_tokens: 300,
            customer: some("acme"),
            feature: some("search"),
            user_id: some("u-17"),
            ..base.clone()
        },
        RequestRecord {
            key: key(ta, "00f067aa0ba902b7"),
            started_at: at(60),
            ended_at: at(60) + chrono::Duration::milliseconds(1500),
            gen_ai_provider: some("anthropic"),
            request_model: some("claude-sonnet-4-5"),
            model: some("claude-sonnet-4-5"),
            input_uncached_tokens: 500,
            input_cached_tokens: 3000,
            input_cache_write_tokens: 1500,
            output_tokens: 800,
            reasoning_tokens: 200,
            customer: some("globex"),
            conversation_id: some("conv-9"),
            ..base.clone()
        },
        RequestRecord {
            key: key(tb, "b7ad6b7169203331"),
            started_at: at(120),
            ended_at: at(120) + chrono::Duration::milliseconds(1500),
            operation: some("embeddings"),
            gen_ai_provider: some("openai"),
            request_model: some("text-embedding-3-small"),
            model: some("text-embedding-3-small"),
            input_uncached_tokens: 42,
            ..base
        },
    ]
}

#[test]
fn every_dialect_and_encoding_reads_into_the_same_requests() {
    for dialect in ["current", "openlit", "traceloop"] {
        for encoding in ["json", "json.gz", "pb", "pb.gz"] {
            let name = format!("{dialect}.{encoding}");
            let reading = read_fixture(&name, &TagAttributes::default());
            assert_eq!(reading.records, expected(), "{name}");
            assert_eq!((reading.rejected_spans, reading.other_spans), (0, 1), "{name}: the HTTP span is not a call");
            assert!(reading.content_dropped >= 2, "{name}: content seen and dropped: {}", reading.content_dropped);
            let warning = reading.partial_success().expect("a warning");
            assert_eq!(warning.rejected_spans, 0, "{name}");
            assert!(warning.error_message.contains("content"), "{name}: {}", warning.error_message);
            assert!(!warning.error_message.contains(PROMPT), "{name}");
        }
    }
}

#[test]
fn promoted_attributes_become_tags_and_content_cannot_be_promoted() {
    let tags = TagAttributes::new(vec![
        AttributeName::parse("app.unknown.thing").unwrap(),
        AttributeName::parse("service.name").unwrap(),
    ]);
    let reading = read_fixture("current.json", &tags);
    let embeddings = &reading.records[2];
    assert_eq!(
        embeddings.tags,
        BTreeMap::from([
            ("app.unknown.thing".to_owned(), "whatever".to_owned()),
            ("service.name".to_owned(), "checkout".to_owned())
        ])
    );
    for content in ["gen_ai.input.messages", "gen_ai.prompt.0.content", "gen_ai.system_instructions"] {
        let refused = AttributeName::parse(content).unwrap_err();
        assert!(refused.contains("content"), "{content}: {refused}");
    }
    assert!(AttributeName::parse("a b").is_err() && AttributeName::parse("").is_err());
}

#[test]
fn a_malformed_body_is_refused_by_position_without_quoting_it() {
    let cases: [(&[u8], Encoding, bool); 5] = [
        (b"{\"resourceSpans\": [", Encoding::Json, false),
        (
            br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "burnrate-secret-prompt"}]}]}]}"#,
            Encoding::Json,
            false,
        ),
        (br#"{"resourceSpans": "burnrate-secret-prompt"}"#, Encoding::Json, false),
        (b"\xff\xff\xff burnrate-secret-prompt", Encoding::Protobuf, false),
        (b"burnrate-secret-prompt", Encoding::Json, true),
    ];
    for (bytes, encoding, gzip) in cases {
        let err = decode(Body { encoding, gzip, bytes }).unwrap_err().to_string();
        assert!(!err.contains(PROMPT), "{err}");
        assert!(err.contains("not") && err.len() > 20, "{err}");
    }
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 65 << 20]).unwrap();
        gz.finish().unwrap()
    };
    let err = decode(Body { encoding: Encoding::Protobuf, gzip: true, bytes: &bomb }).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { inflated: true, .. }), "{err}");
}

#[test]
fn a_span_with_bad_ids_or_counts_is_rejected_and_named_the_rest_kept() {
    let json = br#"{"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000000", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "1111111111111111", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "burnrate-secret-prompt"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "2222222222222222", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "-5"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "3333333333333333", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "3333333333333333", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "4444444444444444", "startTimeUnixNano": "1796119200000000000",
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "900"}}]}
    ]}]}]}"#;
    let request = decode(Body { encoding: Encoding::Json, gzip: false, bytes: json }).unwrap();
    let reading = read(&request, &TagAttributes::default());
    assert_eq!(reading.records.len(), 1, "the good span once, though sent twice");
    assert_eq!(reading.records[0].key.span_id, [0x33; 8]);
    assert_eq!((reading.rejected_spans, reading.other_spans), (3, 1), "the agent's span is not a call");
    let answer = reading.partial_success().unwrap();
    assert_eq!(answer.rejected_spans, 3);
    for named in ["all zeroes", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        assert!(answer.error_message.contains(named), "{named}: {}", answer.error_message);
    }
    assert!(!answer.error_message.contains(PROMPT));
}

#[test]
fn providers_map_to_the_sources_burnrate_connects() {
    for (named, kind) in [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("aws.bedrock", "aws"),
        ("az.ai.openai", "azure"),
        ("gcp.vertex_ai", "gcp"),
        ("anthropic", "anthropic"),
    ] {
        assert_eq!(source_kind(named), Some(kind), "{named}");
    }
    assert_eq!(source_kind("mistral_ai"), None);
}
