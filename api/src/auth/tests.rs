//! Tests of tokens, token requests and the small helpers.

use super::*;

const KEY: &[u8] = b"test-key-0123456789";

fn claims(exp: i64) -> Claims {
    Claims {
        sub: "client-1".into(),
        grp: "A000005".into(),
        iat: 1_000,
        exp,
    }
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token with the given header and payload JSON, signed with `KEY`.
fn forge(header: &str, payload: &str) -> String {
    let signing = format!("{}.{}", b64(header), b64(payload));
    let mut m = mac(KEY);
    m.update(signing.as_bytes());
    format!(
        "{signing}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

#[test]
fn token_round_trip() {
    let token = issue_token(KEY, &claims(5_000));
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    assert_eq!(verify_token(KEY, &token, 4_999), Ok(claims(5_000)));
}

#[test]
fn token_rejections() {
    let good = issue_token(KEY, &claims(5_000));
    let (signing, sig) = good.rsplit_once('.').expect("three parts");
    let mut flipped = sig.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{signing}.{}", String::from_utf8(flipped).expect("ascii"));
    let payload = r#"{"sub":"c","grp":"g","iat":1,"exp":5000}"#;
    let cases: Vec<(String, &[u8], i64, TokenError)> = vec![
        (good.clone(), KEY, 5_000, TokenError::Expired),
        (good.clone(), KEY, 9_999, TokenError::Expired),
        (good.clone(), b"other-key", 1, TokenError::BadSignature),
        (flipped, KEY, 1, TokenError::BadSignature),
        (format!("{signing}."), KEY, 1, TokenError::BadSignature),
        ("".into(), KEY, 1, TokenError::Malformed),
        ("a.b".into(), KEY, 1, TokenError::Malformed),
        (format!("{good}.x"), KEY, 1, TokenError::Malformed),
        (format!("{signing}.!!"), KEY, 1, TokenError::Malformed),
        (
            forge(r#"{"alg":"none","typ":"JWT"}"#, payload),
            KEY,
            1,
            TokenError::WrongAlgorithm,
        ),
        (
            forge(r#"{"alg":"HS512","typ":"JWT"}"#, payload),
            KEY,
            1,
            TokenError::WrongAlgorithm,
        ),
        (
            forge(r#"{"alg":"HS256"}"#, payload),
            KEY,
            1,
            TokenError::Malformed,
        ),
        (
            forge(r#"{"alg":"HS256","typ":"JWT","kid":"1"}"#, payload),
            KEY,
            1,
            TokenError::Malformed,
        ),
        (forge(JWT_HEADER, "not json"), KEY, 1, TokenError::Malformed),
        (
            forge(JWT_HEADER, r#"{"sub":"c","grp":"g","iat":1}"#),
            KEY,
            1,
            TokenError::Malformed,
        ),
        (
            forge(
                JWT_HEADER,
                r#"{"sub":"c","grp":"g","iat":1,"exp":5000,"adm":true}"#,
            ),
            KEY,
            1,
            TokenError::Malformed,
        ),
    ];
    for (token, key, now, want) in cases {
        assert_eq!(verify_token(key, &token, now), Err(want), "{token}");
    }
    // The forged helper itself produces acceptable tokens.
    assert!(verify_token(KEY, &forge(JWT_HEADER, payload), 1).is_ok());
}

#[test]
fn claims_with_quotes_are_escaped() {
    let mut c = claims(10);
    c.sub = "a\"b\\c".into();
    assert_eq!(verify_token(KEY, &issue_token(KEY, &c), 1), Ok(c));
}

#[test]
fn hmac_known_vector() {
    // RFC 4231 test case 2.
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// (content type, authorization, body, expected outcome).
type RequestCase<'a, T> = (Option<&'a str>, Option<&'a str>, &'a str, T);

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json; charset=utf-8");

#[test]
fn token_requests_accepted() {
    let auth = basic("cid", "s3cret");
    let cases: &[RequestCase<(&str, &str)>] = &[
        (
            FORM,
            Some(&auth),
            "grant_type=client_credentials",
            ("cid", "s3cret"),
        ),
        (
            FORM,
            None,
            "grant_type=client_credentials&client_id=cid&client_secret=a%2Bb+c",
            ("cid", "a+b c"),
        ),
        (
            FORM,
            None,
            "client_secret=x&grant_type=client_credentials&client_id=c&scope=s",
            ("c", "x"),
        ),
        (
            JSON,
            None,
            r#"{"grant_type":"client_credentials","client_id":"cid","client_secret":"s"}"#,
            ("cid", "s"),
        ),
        (
            JSON,
            Some(&auth),
            r#"{"grant_type":"client_credentials"}"#,
            ("cid", "s3cret"),
        ),
        (
            None,
            None,
            r#" {"grant_type":"client_credentials","client_id":"a","client_secret":"b"}"#,
            ("a", "b"),
        ),
        (
            None,
            Some(&auth),
            "grant_type=client_credentials",
            ("cid", "s3cret"),
        ),
        (
            FORM,
            Some("basic Y2lkOnM6Mw=="), // "cid:s:3" – the secret may hold ':'
            "grant_type=client_credentials",
            ("cid", "s:3"),
        ),
    ];
    for (ct, authz, body, (id, secret)) in cases {
        let got = parse_token_request(*ct, *authz, body.as_bytes());
        assert_eq!(got, Ok(((*id).to_owned(), (*secret).to_owned())), "{body}");
    }
}

#[test]
fn token_requests_refused() {
    let auth = basic("cid", "s");
    let cases: &[RequestCase<&str>] = &[
        (
            FORM,
            Some(&auth),
            "grant_type=password",
            "unsupported_grant_type",
        ),
        (
            JSON,
            Some(&auth),
            r#"{"grant_type":"authorization_code"}"#,
            "unsupported_grant_type",
        ),
        (FORM, Some(&auth), "", "invalid_request"),
        (
            FORM,
            None,
            "grant_type=client_credentials",
            "invalid_request",
        ),
        (
            FORM,
            None,
            "grant_type=client_credentials&client_id=c",
            "invalid_request",
        ),
        (
            FORM,
            None,
            "grant_type=client_credentials&client_id=&client_secret=x",
            "invalid_request",
        ),
        (
            FORM,
            Some(&auth),
            "grant_type=client_credentials&client_id=c&client_secret=s",
            "invalid_request",
        ),
        (
            FORM,
            Some(&auth),
            "grant_type=client_credentials&grant_type=client_credentials",
            "invalid_request",
        ),
        (FORM, Some(&auth), "grant_type=client%2", "invalid_request"),
        (FORM, Some(&auth), "grant_type=%ZZ", "invalid_request"),
        (FORM, Some(&auth), "grant_type=%FF", "invalid_request"),
        (
            FORM,
            Some("Bearer abc"),
            "grant_type=client_credentials",
            "invalid_request",
        ),
        (
            FORM,
            Some("Basic !!!"),
            "grant_type=client_credentials",
            "invalid_request",
        ),
        (
            FORM,
            Some("Basic bm9jb2xvbg=="),
            "grant_type=client_credentials",
            "invalid_request",
        ),
        (
            FORM,
            Some("Basic OnNlY3JldA=="),
            "grant_type=client_credentials",
            "invalid_request",
        ),
        (
            JSON,
            Some(&auth),
            r#"{"grant_type":"client_credentials","x":1}"#,
            "invalid_request",
        ),
        (JSON, Some(&auth), "{", "invalid_request"),
        (JSON, Some(&auth), r#"{"grant_type":5}"#, "invalid_request"),
        (
            Some("text/plain"),
            Some(&auth),
            "grant_type=client_credentials",
            "invalid_request",
        ),
    ];
    for (ct, authz, body, code) in cases {
        let got = parse_token_request(*ct, *authz, body.as_bytes());
        assert_eq!(
            got.as_ref().map_err(TokenRequestError::code),
            Err(*code),
            "{body} {authz:?}"
        );
    }
}

#[test]
fn bearer_tokens() {
    let cases: &[(Option<&str>, Option<&str>)] = &[
        (Some("Bearer abc.def"), Some("abc.def")),
        (Some("bearer abc"), Some("abc")),
        (Some("  Bearer   abc  "), Some("abc")),
        (Some("Bearer "), None),
        (Some("Bearer"), None),
        (Some("Basic abc"), None),
        (Some("Bearer a b"), None),
        (None, None),
    ];
    for (header, want) in cases {
        assert_eq!(bearer_token(*header), *want, "{header:?}");
    }
}

#[test]
fn random_tokens_are_url_safe_and_distinct() {
    let a = random_token(32).expect("OS RNG");
    let b = random_token(32).expect("OS RNG");
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert_eq!(random_token(0).expect("OS RNG"), "");
}

#[test]
fn constant_time_equality() {
    let cases: &[(&[u8], &[u8], bool)] = &[
        (b"", b"", true),
        (b"abc", b"abc", true),
        (b"abc", b"abd", false),
        (b"abc", b"ab", false),
        (b"", b"a", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(constant_time_eq(a, b), *want, "{a:?} {b:?}");
    }
}

#[test]
fn a_remembered_token_answers_as_a_verified_one() {
    let good = issue_token(KEY, &claims(5_000));
    assert_eq!(verify_token_cached(KEY, &good, 4_000), Ok(claims(5_000)));
    // Remembered now: the same answers as verifying it again.
    assert_eq!(verify_token_cached(KEY, &good, 4_999), Ok(claims(5_000)));
    assert_eq!(
        verify_token_cached(KEY, &good, 5_000),
        Err(TokenError::Expired)
    );
    assert_eq!(
        verify_token_cached(b"other-key", &good, 1),
        Err(TokenError::BadSignature)
    );
    let (signing, _) = good.rsplit_once('.').expect("three parts");
    let forged = format!("{signing}.AAAA");
    assert_eq!(
        verify_token_cached(KEY, &forged, 1),
        Err(TokenError::BadSignature)
    );
    assert_eq!(verify_token_cached(KEY, &good, 1), Ok(claims(5_000)));
}
