//! Spam-policy benchmark: the cost of `mcmp_engine::policy::check` on one
//! core with 10,000 operator keywords, over a fixed mix of realistic
//! messages (short SMS, 2,000-byte LMS, marked ads, a few spam, half of it
//! hidden behind punctuation), beside a baseline of `normalize` alone on
//! the same texts, measured in the same run; then the same for the strict
//! matching of resellers' messages (SPEC §5.11) beside `normalize_strict`
//! alone. Also reports how long the keyword automata take to build.
//!
//! Usage: `policy_check [--seconds S] [--keywords N]` (defaults: 3 s, 10,000).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use mcmp_engine::policy::{self, normalize, normalize_strict, PolicyInput, SpamKeywords};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Messages in the mix.
const MESSAGES: usize = 1_000;
/// 2024-03-15 12:00 KST in unix ms: ads are allowed then.
const NOON_KST: i64 = 1_710_471_600_000;

struct Args {
    seconds: f64,
    keywords: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        seconds: 3.0,
        keywords: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => args.seconds = value.parse()?,
            "--keywords" => args.keywords = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// A tiny deterministic generator (64-bit LCG), so every run checks the
/// same keywords and messages.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Keywords: two thirds Hangul (2–4 random syllables), one third ASCII
/// (5–10 letters), plus a few real ones that the spam messages contain.
fn keywords(rng: &mut Lcg, n: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..n.saturating_sub(3))
        .map(|i| {
            if i % 3 == 2 {
                let len = 5 + rng.below(6);
                (0..len)
                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                    .collect()
            } else {
                let len = 2 + rng.below(3);
                (0..len)
                    .filter_map(|_| char::from_u32(0xAC00 + rng.below(11_172) as u32))
                    .collect()
            }
        })
        .collect();
    out.extend(["대출", "카지노", "FREE MONEY"].map(String::from));
    out
}

/// One message of the mix: (text, subject, ad).
type Message = (String, Option<String>, bool);

/// The mix: 60% short SMS, 20% 2,000-byte LMS, 15% marked ads, 5% spam
/// (a keyword behind spaces, which both matchings see, or behind dots,
/// which only the strict one sees).
fn messages(rng: &mut Lcg) -> Vec<Message> {
    const SMS: [&str; 3] = [
        "[쇼핑몰] 주문하신 상품이 발송되었습니다. 운송장 번호",
        "[은행] 인증번호는 입니다. 타인에게 알려주지 마세요.",
        "Your verification code is. Do not share it.",
    ];
    const LMS_LINE: &str = "고객님께서 신청하신 서비스의 이용 내역을 안내드립니다. ";
    (0..MESSAGES)
        .map(|i| {
            let n = rng.below(1_000_000);
            match i % 20 {
                0..=11 => (format!("{} {n}", SMS[i % SMS.len()]), None, false),
                12..=15 => {
                    let mut text = String::with_capacity(2_100);
                    while text.len() < 2_000 {
                        text.push_str(LMS_LINE);
                    }
                    (text, Some(format!("이용 내역 안내 {n}")), false)
                }
                16..=18 => (
                    format!("(광고) 봄맞이 세일 최대 {}% 할인!\n매장 안내 {n}\n무료수신거부 080-123-4567", n % 70),
                    None,
                    true,
                ),
                _ if i % 40 == 19 => (format!("저금리 대 출 상담 {n}"), None, false),
                _ => (format!("저금리 대.출 상담 {n}"), None, false),
            }
        })
        .collect()
}

/// Per-check latencies in nanoseconds.
fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

fn report(label: &str, hist: &Histogram<u64>, elapsed: Duration) {
    println!(
        "{label}: checks/s={:.0} ns/check p50={} p99={} max={}",
        hist.len() as f64 / elapsed.as_secs_f64(),
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.max(),
    );
}

/// Runs `f` over the messages round-robin for `seconds`, timing each call.
fn run(
    seconds: f64,
    messages: &[Message],
    mut f: impl FnMut(&Message),
) -> Result<(Histogram<u64>, Duration)> {
    let mut hist = histogram()?;
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    'outer: loop {
        for message in messages {
            let t = Instant::now();
            f(message);
            hist.record(t.elapsed().as_nanos() as u64)?;
        }
        if start.elapsed() >= budget {
            break 'outer;
        }
    }
    Ok((hist, start.elapsed()))
}

/// The normalize-only baseline, then `policy::check`, with normal or
/// strict keyword matching.
fn bench_matching(
    args: &Args,
    messages: &[Message],
    spam: &SpamKeywords,
    strict: bool,
) -> Result<()> {
    let (matching, form): (&str, fn(&str) -> String) = match strict {
        false => ("normal", normalize),
        true => ("strict", normalize_strict),
    };
    let (hist, elapsed) = run(args.seconds, messages, |(text, subject, _)| {
        std::hint::black_box(form(text));
        std::hint::black_box(subject.as_deref().map(form));
    })?;
    report(
        &format!("{matching}: baseline normalize only"),
        &hist,
        elapsed,
    );

    let opted_out = |to: &str| to.ends_with("0000");
    let mut rejected = 0u64;
    let mut checked = 0u64;
    let (hist, elapsed) = run(args.seconds, messages, |(text, subject, ad)| {
        let input = PolicyInput {
            text,
            subject: subject.as_deref(),
            to: "01012345678",
            ad: *ad,
            send_at: None,
            strict,
        };
        let outcome = policy::check(&input, spam, &opted_out, NOON_KST);
        checked += 1;
        rejected += u64::from(std::hint::black_box(outcome).is_err());
    })?;
    report(
        &format!("{matching}: policy::check keywords={}", spam.len()),
        &hist,
        elapsed,
    );
    println!(
        "{matching}: rejected {:.1}% of {checked} checks",
        rejected as f64 * 100.0 / checked.max(1) as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut rng = Lcg(0x6d63_6d70);
    let words = keywords(&mut rng, args.keywords);
    let messages = messages(&mut rng);
    let bytes: usize = messages.iter().map(|(t, _, _)| t.len()).sum();
    println!(
        "mix: {} messages, {:.0} bytes mean (60% sms, 20% 2 kB lms, 15% ads, 5% spam)",
        messages.len(),
        bytes as f64 / messages.len() as f64
    );

    let t = Instant::now();
    let spam = SpamKeywords::new(&words);
    println!(
        "automata (normal and strict): keywords={} build_ms={:.1}",
        spam.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    for strict in [false, true] {
        bench_matching(&args, &messages, &spam, strict)?;
    }
    Ok(())
}
