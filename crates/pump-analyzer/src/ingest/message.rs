//! The ingest message contract (SPEC §3.1): parse one JSON value into a validated bet or heartbeat,
//! collecting *every* offending field so a 422 can name them all. Parsing happens once, here, at
//! the edge; the rest of the program only sees [`NewBet`] and [`Heartbeat`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use pump_engine::Difficulty;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Most items one request may carry.
pub const MAX_BATCH: usize = 1000;

/// A bet as the bot reported it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBet {
    pub antebot_bet_id: String,
    pub nonce: i64,
    pub amount: f64,
    pub payout: f64,
    pub difficulty: Difficulty,
    pub client_seed: String,
    pub server_seed_hashed: String,
    /// The round's multiplier: `roundResult`, falling back to `payoutMultiplier`.
    pub round_result: f64,
    /// `payoutMultiplier` as sent, else the round result.
    pub payout_multiplier: f64,
    pub round_target: Option<f64>,
    pub date_time: Option<DateTime<Utc>>,
}

/// One observed round with no bet attached (SPEC §3.1 "Heartbeats").
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub nonce: i64,
    pub round_result: f64,
    pub client_seed: String,
    pub server_seed_hashed: String,
}

/// One validated ingest message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Bet(NewBet),
    Heartbeat(Heartbeat),
}

impl Message {
    pub fn seed_pair(&self) -> (&str, &str) {
        match self {
            Message::Bet(b) => (&b.server_seed_hashed, &b.client_seed),
            Message::Heartbeat(h) => (&h.server_seed_hashed, &h.client_seed),
        }
    }

    pub fn nonce(&self) -> i64 {
        match self {
            Message::Bet(b) => b.nonce,
            Message::Heartbeat(h) => h.nonce,
        }
    }

    pub fn round_result(&self) -> f64 {
        match self {
            Message::Bet(b) => b.round_result,
            Message::Heartbeat(h) => h.round_result,
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Joins field errors into one sentence naming each field.
pub fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

/// The keys of an ingest object that validation reads, in [`Fields`] slot order.
const KEYS: [&str; 12] = [
    "type",
    "id",
    "nonce",
    "amount",
    "payout",
    "difficulty",
    "clientSeed",
    "serverSeedHashed",
    "roundResult",
    "payoutMultiplier",
    "roundTarget",
    "dateTime",
];

/// The values of one JSON object under the keys ingest reads. Every other key is skipped while
/// parsing, never built (unknown fields are ignored, SPEC §3.1), and no map is made: a batch of
/// 100 bets parsed into `serde_json::Value` spent most of its parsing time in map inserts.
/// A repeated key keeps its last value, as a JSON map would.
#[derive(Debug, Default)]
pub struct Fields([Option<Value>; KEYS.len()]);

impl Fields {
    fn slot(key: &str) -> Option<usize> {
        KEYS.iter().position(|k| *k == key)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        Self::slot(key).and_then(|i| self.0[i].as_ref())
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        Self::slot(key).and_then(|i| self.0[i].take())
    }
}

/// One item of an ingest body: an object, or anything else (refused with a message).
/// Items live side by side in a batch's `Vec`, so the object stays inline: boxing it would add an
/// allocation per bet to save space only for the rare non-object item.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "objects are the common case; see above")]
pub enum Item {
    Object(Fields),
    Other,
}

/// A request body as parsed: items, one object (perhaps carrying `bets`), or another JSON value.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per request, never stored in bulk")]
pub enum RawBody {
    Items(Vec<Item>),
    /// An object, with the value of its `bets` key when it has one (read only at the top).
    Object(Fields, Option<Box<RawBody>>),
    Other,
}

/// What a key of an object is to ingest.
enum Key {
    Known(usize),
    Bets,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match Fields::slot(key) {
                    Some(slot) => Key::Known(slot),
                    None if key == "bets" => Key::Bets,
                    None => Key::Unknown,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads an object's ingest keys; `bets` is read only at the top level (`top`).
fn read_object<'de, A: MapAccess<'de>>(mut map: A, top: bool) -> Result<(Fields, Option<Box<RawBody>>), A::Error> {
    let mut fields = Fields::default();
    let mut bets = None;
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::Known(slot) => fields.0[slot] = Some(map.next_value()?),
            Key::Bets if top => bets = Some(Box::new(map.next_value_seed(Shape { top: false })?)),
            Key::Bets | Key::Unknown => {
                map.next_value::<Skip>()?;
            }
        }
    }
    Ok((fields, bets))
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

/// A value read and dropped. Unlike `serde::de::IgnoredAny`, which serde_json skips without its
/// nesting limit, this goes through `deserialize_any`, so a body nested past the limit is still
/// refused as invalid JSON, exactly as when it is parsed into a `Value`.
struct Skip;

/// Implements the scalar visits of a visitor whose every non-object, non-array value is `$other`.
macro_rules! scalars_are {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SkipVisitor;
        impl<'de> Visitor<'de> for SkipVisitor {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<IgnoredAny, Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
                skip_seq(seq).map(|()| Skip)
            }
            scalars_are!(Skip);
        }
        deserializer.deserialize_any(SkipVisitor)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                Ok(Item::Object(read_object(map, false)?.0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
                skip_seq(seq).map(|()| Item::Other)
            }
            scalars_are!(Item::Other);
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// Reads a body's shape; `top` is false for the value of a top-level `bets` key, whose own
/// `bets` key means nothing.
struct Shape {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Shape {
    type Value = RawBody;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawBody, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape {
    type Value = RawBody;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawBody, A::Error> {
        items(seq).map(RawBody::Items)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawBody, A::Error> {
        read_object(map, self.top).map(|(fields, bets)| RawBody::Object(fields, bets))
    }
    scalars_are!(RawBody::Other);
}

impl<'de> Deserialize<'de> for RawBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Shape { top: true }.deserialize(deserializer)
    }
}

fn items<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<Item>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH));
    while let Some(item) = seq.next_element()? {
        items.push(item);
    }
    Ok(items)
}

/// How the request body was shaped.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per request, never stored in bulk")]
pub enum Body {
    Single(Item),
    Batch(Vec<Item>),
}

/// Splits a parsed body into one item or a batch; refuses other shapes with a message.
pub fn split_body(body: RawBody) -> Result<Body, FieldError> {
    match body {
        RawBody::Items(items) => check_batch(items),
        RawBody::Object(_, Some(bets)) => match *bets {
            RawBody::Items(items) => check_batch(items),
            _ => Err(FieldError::new("bets", "must be an array of bets")),
        },
        RawBody::Object(fields, None) => Ok(Body::Single(Item::Object(fields))),
        RawBody::Other => Err(FieldError::new("body", "must be a bet object, an array of bets, or {\"bets\": [...]}")),
    }
}

fn check_batch(items: Vec<Item>) -> Result<Body, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new("bets", "must contain at least one bet"));
    }
    if items.len() > MAX_BATCH {
        return Err(FieldError::new("bets", format!("at most {MAX_BATCH} bets per request, got {}", items.len())));
    }
    Ok(Body::Batch(items))
}

/// Validates one message. Unknown fields are ignored.
pub fn parse_message(item: Item) -> Result<Message, Vec<FieldError>> {
    let Item::Object(mut obj) = item else {
        return Err(vec![FieldError::new("body", "each bet must be a JSON object")]);
    };
    let obj = &mut obj;
    let mut errors = Vec::new();
    let kind = match obj.get("type") {
        None | Some(Value::Null) => "bet",
        Some(Value::String(s)) if s == "bet" => "bet",
        Some(Value::String(s)) if s == "heartbeat" => "heartbeat",
        Some(_) => {
            errors.push(FieldError::new("type", "must be \"bet\" or \"heartbeat\""));
            "invalid"
        }
    };
    let nonce = nonce(obj, &mut errors);
    let client_seed = seed(obj, "clientSeed", &mut errors);
    let server_seed_hashed = seed(obj, "serverSeedHashed", &mut errors);
    let round_result = optional_number(obj, "roundResult", Bound::AtLeastZero, &mut errors);
    let payout_multiplier = optional_number(obj, "payoutMultiplier", Bound::AtLeastZero, &mut errors);
    let multiplier_missing = present(obj, "roundResult").is_none() && present(obj, "payoutMultiplier").is_none();
    if multiplier_missing {
        errors.push(FieldError::new("roundResult", "is required (or the older payoutMultiplier)"));
    }
    if kind == "heartbeat" {
        return match (nonce, client_seed, server_seed_hashed, round_result.or(payout_multiplier)) {
            (Some(nonce), Some(client_seed), Some(server_seed_hashed), Some(round_result)) if errors.is_empty() => {
                Ok(Message::Heartbeat(Heartbeat { nonce, round_result, client_seed, server_seed_hashed }))
            }
            _ => Err(errors),
        };
    }
    let antebot_bet_id = bet_id(obj, &mut errors);
    let amount = required_number(obj, "amount", &mut errors);
    let payout = required_number(obj, "payout", &mut errors);
    let difficulty = difficulty(obj, &mut errors);
    let round_target = optional_number(obj, "roundTarget", Bound::AboveZero, &mut errors);
    let date_time = obj.get("dateTime").and_then(Value::as_str).and_then(parse_date_time);
    match (antebot_bet_id, nonce, amount, payout, difficulty, client_seed, server_seed_hashed) {
        (Some(id), Some(nonce), Some(amount), Some(payout), Some(difficulty), Some(client), Some(server))
            if errors.is_empty() =>
        {
            let round_result = round_result.or(payout_multiplier).unwrap_or_default();
            Ok(Message::Bet(NewBet {
                antebot_bet_id: id,
                nonce,
                amount,
                payout,
                difficulty,
                client_seed: client,
                server_seed_hashed: server,
                round_result,
                payout_multiplier: payout_multiplier.unwrap_or(round_result),
                round_target,
                date_time,
            }))
        }
        _ => Err(errors),
    }
}

fn present<'a>(obj: &'a Fields, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

/// Takes a field's value out (strings move into the message instead of being copied).
fn take_present(obj: &mut Fields, field: &str) -> Option<Value> {
    obj.take(field).filter(|v| !v.is_null())
}

/// The length of `s` in characters when it is over `max`; counted only when its bytes are (a
/// character is at least one byte), which spares counting nearly every string.
fn chars_over(s: &str, max: usize) -> Option<usize> {
    (s.len() > max).then(|| s.chars().count()).filter(|&len| len > max)
}

fn bet_id(obj: &mut Fields, errors: &mut Vec<FieldError>) -> Option<String> {
    match take_present(obj, "id") {
        None => errors.push(FieldError::new("id", "is required")),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                errors.push(FieldError::new("id", "must not be empty"));
            } else if let Some(len) = chars_over(&s, 128) {
                errors.push(FieldError::new("id", format!("must be at most 128 characters, got {len}")));
            } else {
                return Some(s);
            }
        }
        Some(_) => errors.push(FieldError::new("id", "must be a string")),
    }
    None
}

fn nonce(obj: &Fields, errors: &mut Vec<FieldError>) -> Option<i64> {
    match present(obj, "nonce") {
        None => errors.push(FieldError::new("nonce", "is required")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= 1 => return Some(v),
            Some(_) => errors.push(FieldError::new("nonce", "must be an integer ≥ 1")),
            None if n.is_u64() => errors.push(FieldError::new("nonce", "is too large")),
            None => errors.push(FieldError::new("nonce", "must be an integer ≥ 1")),
        },
        Some(_) => errors.push(FieldError::new("nonce", "must be an integer ≥ 1")),
    }
    None
}

fn seed(obj: &mut Fields, field: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
    match take_present(obj, field) {
        None => errors.push(FieldError::new(field, "is required")),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be blank"));
            } else if let Some(len) = chars_over(&s, 256) {
                errors.push(FieldError::new(field, format!("must be at most 256 characters, got {len}")));
            } else {
                return Some(s);
            }
        }
        Some(_) => errors.push(FieldError::new(field, "must be a string")),
    }
    None
}

fn difficulty(obj: &Fields, errors: &mut Vec<FieldError>) -> Option<Difficulty> {
    match present(obj, "difficulty") {
        None => errors.push(FieldError::new("difficulty", "is required")),
        Some(Value::String(s)) => match s.parse::<Difficulty>() {
            Ok(d) => return Some(d),
            Err(e) => errors.push(FieldError::new("difficulty", e.to_string())),
        },
        Some(_) => errors.push(FieldError::new("difficulty", "must be one of easy, medium, hard, expert")),
    }
    None
}

#[derive(Clone, Copy)]
enum Bound {
    AtLeastZero,
    AboveZero,
}

fn check_number(value: &Value, field: &'static str, bound: Bound, errors: &mut Vec<FieldError>) -> Option<f64> {
    let rule = match bound {
        Bound::AtLeastZero => "must be a finite number ≥ 0",
        Bound::AboveZero => "must be a finite number > 0",
    };
    let Some(v) = value.as_f64().filter(|v| v.is_finite()) else {
        errors.push(FieldError::new(field, rule));
        return None;
    };
    let ok = match bound {
        Bound::AtLeastZero => v >= 0.0,
        Bound::AboveZero => v > 0.0,
    };
    if ok {
        Some(v)
    } else {
        errors.push(FieldError::new(field, rule));
        None
    }
}

fn required_number(obj: &Fields, field: &'static str, errors: &mut Vec<FieldError>) -> Option<f64> {
    match present(obj, field) {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(v) => check_number(v, field, Bound::AtLeastZero, errors),
    }
}

fn optional_number(obj: &Fields, field: &'static str, bound: Bound, errors: &mut Vec<FieldError>) -> Option<f64> {
    present(obj, field).and_then(|v| check_number(v, field, bound, errors))
}

/// ISO-8601 with `Z`, an offset, or none (naive = UTC); `None` when it cannot be read.
pub fn parse_date_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(raw, format) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: &Value) -> Item {
        serde_json::from_value(value.clone()).unwrap()
    }

    fn raw(value: Value) -> RawBody {
        serde_json::from_value(value).unwrap()
    }

    fn valid() -> Value {
        json!({
            "id": "bet-1", "nonce": 5, "amount": 0.5, "payout": 1.0, "difficulty": "expert",
            "clientSeed": "client", "serverSeedHashed": "abc123", "roundResult": 2.8,
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = valid();
        v[field] = value;
        v
    }

    fn without(field: &str) -> Value {
        let mut v = valid();
        v.as_object_mut().unwrap().remove(field);
        v
    }

    #[test]
    fn a_complete_bet_is_accepted() {
        let Message::Bet(bet) = parse_message(item(&valid())).unwrap() else { panic!("expected a bet") };
        assert_eq!(bet.antebot_bet_id, "bet-1");
        assert_eq!(bet.difficulty, Difficulty::Expert);
        assert_eq!(bet.round_result, 2.8);
        assert_eq!(bet.payout_multiplier, 2.8);
        assert_eq!(bet.date_time, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        let long = "x".repeat(129);
        let cases: Vec<(Value, &str, &str)> = vec![
            (without("id"), "id", "is required"),
            (with("id", json!("")), "id", "must not be empty"),
            (with("id", json!(long)), "id", "at most 128"),
            (with("id", json!("é".repeat(129))), "id", "at most 128 characters, got 129"),
            (with("id", json!(12)), "id", "must be a string"),
            (without("nonce"), "nonce", "is required"),
            (with("nonce", json!(0)), "nonce", "≥ 1"),
            (with("nonce", json!(-3)), "nonce", "≥ 1"),
            (with("nonce", json!(1.5)), "nonce", "integer"),
            (with("nonce", json!("7")), "nonce", "integer"),
            (with("nonce", json!(u64::MAX)), "nonce", "too large"),
            (with("amount", json!(-1)), "amount", "≥ 0"),
            (with("amount", json!("NaN")), "amount", "finite"),
            (without("payout"), "payout", "is required"),
            (with("difficulty", json!("insane")), "difficulty", "one of easy, medium, hard, expert"),
            (with("clientSeed", json!("")), "clientSeed", "blank"),
            (with("serverSeedHashed", json!("h".repeat(257))), "serverSeedHashed", "at most 256"),
            (with("roundResult", json!(-0.1)), "roundResult", "≥ 0"),
            (with("roundTarget", json!(0)), "roundTarget", "> 0"),
            (with("type", json!("spin")), "type", "\"bet\" or \"heartbeat\""),
        ];
        for (body, field, fragment) in cases {
            let errors = parse_message(item(&body)).expect_err(&format!("{body} must be refused"));
            let found =
                errors.iter().find(|e| e.field == field).unwrap_or_else(|| panic!("{field} not named: {errors:?}"));
            assert!(found.message.contains(fragment), "{field}: {:?} lacks {fragment:?}", found.message);
        }
    }

    /// Lengths are in characters, not bytes.
    #[test]
    fn limits_count_characters() {
        let long = with("id", json!("é".repeat(128)));
        let Message::Bet(bet) = parse_message(item(&long)).unwrap() else { panic!("expected a bet") };
        assert_eq!(bet.antebot_bet_id.chars().count(), 128);
        assert!(parse_message(item(&with("clientSeed", json!("ü".repeat(256))))).is_ok());
        let errors = parse_message(item(&with("clientSeed", json!("ü".repeat(257))))).unwrap_err();
        assert!(errors[0].message.contains("got 257"), "{errors:?}");
    }

    #[test]
    fn all_offending_fields_are_reported_together() {
        let errors = parse_message(item(&json!({"id": "test", "nonce": 1}))).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        for f in ["clientSeed", "serverSeedHashed", "roundResult", "amount", "payout", "difficulty"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn round_result_falls_back_to_payout_multiplier() {
        let mut body = without("roundResult");
        body["payoutMultiplier"] = json!(3.5);
        let Message::Bet(bet) = parse_message(item(&body)).unwrap() else { panic!() };
        assert_eq!(bet.round_result, 3.5);
        assert_eq!(bet.payout_multiplier, 3.5);
    }

    #[test]
    fn heartbeats_need_only_round_fields() {
        let hb =
            json!({"type": "heartbeat", "nonce": 9, "roundResult": 1.63, "clientSeed": "c", "serverSeedHashed": "s"});
        assert_eq!(
            parse_message(item(&hb)).unwrap(),
            Message::Heartbeat(Heartbeat {
                nonce: 9,
                round_result: 1.63,
                client_seed: "c".into(),
                server_seed_hashed: "s".into()
            })
        );
        let errors = parse_message(item(&json!({"type": "heartbeat", "nonce": 9}))).unwrap_err();
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn date_times_in_every_accepted_form_are_stored_in_utc() {
        let cases = [
            ("2024-02-18T10:00:00Z", Some("2024-02-18T10:00:00+00:00")),
            ("2024-02-18T10:00:00+00:00", Some("2024-02-18T10:00:00+00:00")),
            ("2024-02-18T10:00:00-05:00", Some("2024-02-18T15:00:00+00:00")),
            ("2024-02-18T10:00:00.250", Some("2024-02-18T10:00:00.250+00:00")),
            ("2024-02-18 10:00:00", Some("2024-02-18T10:00:00+00:00")),
            ("yesterday-ish", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_date_time(raw).map(|d| d.to_rfc3339()), expected.map(str::to_string), "{raw}");
        }
    }

    #[test]
    fn bodies_parse_from_bytes_keeping_only_the_ingest_keys() {
        let raw: RawBody = serde_json::from_slice(
            br#"[{"id": "a", "nonce": 1, "amount": 0, "payout": 0, "difficulty": "easy", "clientSeed": "c",
                  "serverSeedHashed": "s", "roundResult": 1.5, "extra": {"deep": [1, {"x": null}]}, "bets": 3,
                  "id": "b"},
                 {"type": "heartbeat", "nonce": 2, "roundResult": 2, "client\u0053eed": "c", "serverSeedHashed": "s"},
                 7, "x", null, [1, 2], true]"#,
        )
        .unwrap();
        let Body::Batch(items) = split_body(raw).unwrap() else { panic!("expected a batch") };
        assert_eq!(items.len(), 7);
        let mut items = items.into_iter();
        let Message::Bet(bet) = parse_message(items.next().unwrap()).unwrap() else { panic!("expected a bet") };
        assert_eq!(bet.antebot_bet_id, "b", "a repeated key keeps its last value");
        let Message::Heartbeat(hb) = parse_message(items.next().unwrap()).unwrap() else {
            panic!("expected a heartbeat")
        };
        assert_eq!(hb.client_seed, "c", "escaped keys are read like plain ones");
        for other in items {
            assert_eq!(parse_message(other).unwrap_err()[0].message, "each bet must be a JSON object");
        }
        for body in [&br#"{"bets": null}"#[..], br#"{"bets": {"id": "1"}}"#, br#"{"id": "1", "bets": "x"}"#] {
            let err = split_body(serde_json::from_slice(body).unwrap()).unwrap_err();
            assert_eq!((err.field, err.message.as_str()), ("bets", "must be an array of bets"));
        }
        let err = split_body(serde_json::from_slice(b"\"bet\"").unwrap()).unwrap_err();
        assert_eq!(err.field, "body");
        // Skipped values obey the nesting limit like parsed ones: too deep is invalid JSON.
        for deep in [format!("[{{\"x\": {}{}}}]", "[".repeat(500), "]".repeat(500)), "[".repeat(500) + &"]".repeat(500)]
        {
            assert!(serde_json::from_str::<RawBody>(&deep).is_err(), "{}", &deep[..20]);
        }
    }

    #[test]
    fn body_shapes_split_into_single_and_batch() {
        assert!(matches!(split_body(raw(valid())).unwrap(), Body::Single(_)));
        assert!(matches!(split_body(raw(json!([valid(), valid()]))).unwrap(), Body::Batch(v) if v.len() == 2));
        assert!(matches!(split_body(raw(json!({"bets": [valid()]}))).unwrap(), Body::Batch(v) if v.len() == 1));
        assert_eq!(split_body(raw(json!([]))).unwrap_err().field, "bets");
        assert_eq!(split_body(raw(json!(vec![valid(); 1001]))).unwrap_err().field, "bets");
        assert_eq!(split_body(raw(json!(42))).unwrap_err().field, "body");
    }
}
